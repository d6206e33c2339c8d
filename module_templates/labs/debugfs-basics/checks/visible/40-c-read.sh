# task: 4
# title: subdir/c exists (mode 0644) and reads its initial bytes, also at an offset
if [ -d "$ROOT/subdir" ]; then ok "subdir is a directory"; else not_ok "subdir is a directory" "no $ROOT/subdir"; fi
if mode_is "$ROOT/subdir/c" 644; then ok "c has mode 0644"; else not_ok "c has mode 0644"; fi
expect_read "$ROOT/subdir/c" 'c data\n'
# dd skip=2 bs=1: read(2) at offset 2 must give the rest
if dd if="$ROOT/subdir/c" of=/tmp/.c-got bs=1 skip=2 2>/tmp/.c-err && printf 'data\n' > /tmp/.c-want && cmp -s /tmp/.c-got /tmp/.c-want; then
    ok "reading from offset 2 gives 'data\\n'"
else
    diag "read at offset 2: $(_shown /tmp/.c-got) $(cat /tmp/.c-err)"
    not_ok "reading from offset 2 gives 'data\\n'" "honour *ppos: simple_read_from_buffer() does it for you"
fi
