# task: 3
# title: b reads the 32 bytes of the array; its mode depends on the kernel
# A blob is binary: a read returns exactly .size bytes, NULs included.
{ printf 'Hello world!\n'; head -c 19 /dev/zero; } > /tmp/.b-want
if cat "$ROOT/b" > /tmp/.b-got 2>/tmp/.b-err && cmp -s /tmp/.b-want /tmp/.b-got; then
    ok "b reads 'Hello world!\\n' and 19 NUL bytes"
else
    diag "read:     $(_shown /tmp/.b-got) $(cat /tmp/.b-err 2>/dev/null)"
    diag "expected: $(_shown /tmp/.b-want)"
    not_ok "b reads 'Hello world!\\n' and 19 NUL bytes"
fi
# Before 6.8 debugfs_create_blob() masks the mode read-only; from 6.8 it keeps 0644.
case $SERIES in
    5.* | 6.[0-7]) want=444 ;;
    *) want=644 ;;
esac
if mode_is "$ROOT/b" $want; then ok "b shows mode 0$want on $SERIES"; else not_ok "b shows mode 0$want on $SERIES" "created with mode 0644?"; fi
