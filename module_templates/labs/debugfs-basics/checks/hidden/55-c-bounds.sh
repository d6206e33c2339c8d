# task: 5
# title: subdir/c: 31 bytes fit exactly, an empty write changes nothing, a write at an offset is refused
full='0123456789012345678901234567890'
if put_ok "$ROOT/subdir/c" "$full" && same "$ROOT/subdir/c" "$full"; then ok "31 bytes fit"; else not_ok "31 bytes fit"; fi
: > "$ROOT/subdir/c"
if same "$ROOT/subdir/c" "$full"; then ok "an empty write changes nothing"; else not_ok "an empty write changes nothing"; fi
printf 'zz' > /tmp/.c-z
if dd if=/tmp/.c-z of="$ROOT/subdir/c" bs=1 seek=3 conv=notrunc 2>/dev/null; then
    not_ok "a write at offset 3 is refused" "c_write must reject *ppos != 0"
else
    ok "a write at offset 3 is refused"
fi
if same "$ROOT/subdir/c" "$full"; then ok "c is unchanged"; else not_ok "c is unchanged"; fi
