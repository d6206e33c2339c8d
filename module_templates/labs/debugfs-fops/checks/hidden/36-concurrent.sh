# task: 3
# title: two writers and a reader at once: every read is one writer's whole content
A=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
B=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
printf "$A" > /tmp/.A
printf "$B" > /tmp/.B
rm -f /tmp/.stop
# the buffer holds one writer's content before the race starts: what an earlier check left
# there (e.g. "short") is no torn read, however late the writers get going on a busy host
printf "$A" > "$ROOT/buffer"
# printf is a builtin: one write(2) of 64 bytes at offset 0, no fork
writer() { while [ ! -e /tmp/.stop ]; do printf "$1" > "$ROOT/buffer"; done; }
writer "$A" & w1=$!
writer "$B" & w2=$!
torn=0; n=0
while [ $n -lt 40 ]; do
    cat "$ROOT/buffer" > /tmp/.r 2>/dev/null
    if ! cmp -s /tmp/.r /tmp/.A && ! cmp -s /tmp/.r /tmp/.B; then
        [ $torn -eq 0 ] && diag "torn read: $(_shown /tmp/.r)"
        torn=$((torn + 1))
    fi
    n=$((n + 1))
done
touch /tmp/.stop
wait $w1 $w2
if [ $torn -eq 0 ]; then ok "40 reads while two writers write: none torn"; else not_ok "40 reads while two writers write: none torn" "$torn torn: hold buf_lock in read and write"; fi
