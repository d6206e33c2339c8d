# task: 4
# title: stats is a seq_file: partial reads at offsets work, counters add up
rmmod "$MODULE" && insmod "$KO" || diag "could not reload $MODULE"
put "$ROOT/buffer" '0123456789'
put "$ROOT/buffer" 'ab'
head -c 65 /dev/zero | tr '\0' y > /tmp/.big
dd if=/tmp/.big of="$ROOT/buffer" bs=65 count=1 conv=notrunc 2>/dev/null
printf 'zz' > /tmp/.zz
dd if=/tmp/.zz of="$ROOT/buffer" bs=1 seek=9 conv=notrunc 2>/dev/null
expect_read "$ROOT/stats" 'length: 2\nwrites: 2\nrefused: 2\n'
dd if="$ROOT/stats" of=/tmp/.got bs=1 skip=8 count=1 2>/dev/null
printf '2' > /tmp/.want
if cmp -s /tmp/.got /tmp/.want; then ok "byte 8 of stats is the length's digit"; else not_ok "byte 8 of stats is the length's digit" "read: $(_shown /tmp/.got)"; fi
