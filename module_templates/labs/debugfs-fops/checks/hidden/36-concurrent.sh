# task: 3
# title: two writers and a reader at once: every read is one writer's whole content
A=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
B=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
printf "$A" > /tmp/.A
printf "$B" > /tmp/.B
rm -f /tmp/.stop /tmp/.go1 /tmp/.go2
# the buffer holds one writer's content before the race starts: what an earlier check left
# there (e.g. "short") is no torn read, however late the writers get going on a busy host
printf "$A" > "$ROOT/buffer"
# Each writer alternates the two contents, in opposite orders. Had each written one content
# only, a guest whose timers fire together (a busy host) runs the writers in lock step, the
# second's half always landing on its own other half: no torn state lasts for a reader to see.
# Alternating, every first-half round leaves a torn buffer while both sleep, in lock step or not.
# printf is a builtin: one write(2) of 64 bytes at offset 0, no fork
writer() {
    printf "$1" > "$ROOT/buffer"; touch "/tmp/.go$3"
    while [ ! -e /tmp/.stop ]; do printf "$2" > "$ROOT/buffer"; printf "$1" > "$ROOT/buffer"; done
}
writer "$A" "$B" 1 & w1=$!
writer "$B" "$A" 2 & w2=$!
# reads start once both writers have written (at most 5 s: a write that never returns is
# this check's failure, not a hang)
waited=0
while { [ ! -e /tmp/.go1 ] || [ ! -e /tmp/.go2 ]; } && [ $waited -lt 500 ]; do sleep 0.01; waited=$((waited + 1)); done
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
if [ $waited -ge 500 ]; then
    not_ok "40 reads while two writers write: none torn" "the writers' first writes did not return in 5 s"
elif [ $torn -eq 0 ]; then
    ok "40 reads while two writers write: none torn"
else
    not_ok "40 reads while two writers write: none torn" "$torn torn: hold buf_lock in read and write"
fi
