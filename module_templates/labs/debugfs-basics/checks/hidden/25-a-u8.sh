# task: 2
# title: a is really a u8: 255 fits, 256 wraps to 0, garbage is refused
if put_ok "$ROOT/a" '255\n' && same "$ROOT/a" '255\n'; then ok "a takes 255"; else not_ok "a takes 255"; fi
# debugfs does not range-check: the u8 setter stores the low byte.
if put_ok "$ROOT/a" '256\n' && same "$ROOT/a" '0\n'; then ok "256 wraps to 0 (a u8)"; else not_ok "256 wraps to 0 (a u8)" "use debugfs_create_u8()"; fi
if put_fails "$ROOT/a" 'zz\n'; then ok "garbage is refused"; else not_ok "garbage is refused"; fi
put "$ROOT/a" '5\n'
