# task: 3
# title: 64 bytes fit; past the end (ENOSPC) and a hole (EINVAL) are refused; an empty write is harmless
full='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/'
if put_ok "$ROOT/buffer" "$full" && same "$ROOT/buffer" "$full"; then ok "64 bytes fit"; else not_ok "64 bytes fit"; fi
printf '12345' > /tmp/.five
if dd if=/tmp/.five of="$ROOT/buffer" bs=5 seek=12 count=1 conv=notrunc 2>/tmp/.err; then
    not_ok "5 bytes at offset 60 are refused" "60 + 5 > 64"
elif grep -q 'No space left' /tmp/.err; then ok "5 bytes at offset 60 are refused (ENOSPC)"; else not_ok "5 bytes at offset 60 are refused (ENOSPC)" "$(cat /tmp/.err)"; fi
put "$ROOT/buffer" 'short\n'
if dd if=/tmp/.five of="$ROOT/buffer" bs=5 seek=4 count=1 conv=notrunc 2>/tmp/.err; then
    not_ok "a write at offset 20 of a 6-byte content is refused" "it would leave a hole"
elif grep -q 'Invalid argument' /tmp/.err; then ok "a write leaving a hole is refused (EINVAL)"; else not_ok "a write leaving a hole is refused (EINVAL)" "$(cat /tmp/.err)"; fi
: > "$ROOT/buffer"
if same "$ROOT/buffer" 'short\n'; then ok "an empty write changes nothing"; else not_ok "an empty write changes nothing"; fi
