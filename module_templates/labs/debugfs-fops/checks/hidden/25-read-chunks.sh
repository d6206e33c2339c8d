# task: 2
# title: a full 64-byte buffer reads back in 7-byte chunks, and at its last offsets
full='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/'
put "$ROOT/buffer" "$full"
printf "$full" > /tmp/.want
dd if="$ROOT/buffer" of=/tmp/.got bs=7 2>/dev/null
if cmp -s /tmp/.got /tmp/.want; then ok "7-byte reads give the 64 bytes"; else not_ok "7-byte reads give the 64 bytes" "read: $(_shown /tmp/.got)"; fi
dd if="$ROOT/buffer" of=/tmp/.got bs=1 skip=63 2>/dev/null
printf '/' > /tmp/.want
if cmp -s /tmp/.got /tmp/.want; then ok "offset 63 gives the last byte"; else not_ok "offset 63 gives the last byte" "read: $(_shown /tmp/.got)"; fi
