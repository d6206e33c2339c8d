# task: 2
# title: a is a u8, mode 0644, starting at 5, and takes a write
if [ -f "$ROOT/a" ]; then ok "a exists"; else not_ok "a exists" "no file $ROOT/a"; fi
if mode_is "$ROOT/a" 644; then ok "a has mode 0644"; else not_ok "a has mode 0644"; fi
expect_read "$ROOT/a" '5\n'
if put_ok "$ROOT/a" '200\n' && same "$ROOT/a" '200\n'; then ok "a takes 200"; else not_ok "a takes 200"; fi
put "$ROOT/a" '5\n'
