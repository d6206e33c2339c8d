# task: 2
# title: buffer reads 'fops lab\n', also from an offset (dd skip/count)
expect_read "$ROOT/buffer" 'fops lab\n'
# dd_read ARGS...: what dd if=buffer ARGS reads, in /tmp/.got
dd_read() { dd if="$ROOT/buffer" of=/tmp/.got "$@" 2>/tmp/.err || diag "dd $*: $(cat /tmp/.err)"; }
dd_read bs=1 skip=5 count=3
printf 'lab' > /tmp/.want
if cmp -s /tmp/.got /tmp/.want; then ok "3 one-byte reads from offset 5 give 'lab'"; else not_ok "3 one-byte reads from offset 5 give 'lab'" "read: $(_shown /tmp/.got)"; fi
dd_read bs=4 skip=1 count=1
printf ' lab' > /tmp/.want
if cmp -s /tmp/.got /tmp/.want; then ok "a 4-byte read at offset 4 gives ' lab'"; else not_ok "a 4-byte read at offset 4 gives ' lab'" "read: $(_shown /tmp/.got)"; fi
dd_read bs=1 skip=20
if [ -f /tmp/.got ] && [ ! -s /tmp/.got ]; then ok "a read past the end gives nothing"; else not_ok "a read past the end gives nothing" "read: $(_shown /tmp/.got)"; fi
