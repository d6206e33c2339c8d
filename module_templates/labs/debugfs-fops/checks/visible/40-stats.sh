# task: 4
# title: stats counts the length, the writes taken and refused (fresh module)
rmmod "$MODULE" && insmod "$KO" || diag "could not reload $MODULE"
expect_read "$ROOT/stats" 'length: 9\nwrites: 0\nrefused: 0\n'
put "$ROOT/buffer" 'abc'
head -c 65 /dev/zero | tr '\0' y > /tmp/.big
dd if=/tmp/.big of="$ROOT/buffer" bs=65 count=1 conv=notrunc 2>/dev/null
expect_read "$ROOT/stats" 'length: 3\nwrites: 1\nrefused: 1\n'
