# task: 2
# title: count.stp counts 3 sync(2) calls
# staprun -c CMD: the probes are live before CMD starts and the session ends with it.
if [ ! -f "$STAP_KO_DIR/count.ko" ]; then
    not_ok "count.stp compiles" "$(tr '\n' ' ' < "$STAP_KO_DIR/count.err" 2>/dev/null | head -c 800)"
    return 0
fi
timeout -s INT 60 "$STAPRUN" -o /tmp/count.out -c 'sh -c "sync; sync; sync"' "$STAP_KO_DIR/count.ko" 2>/tmp/count.err
rc=$?
[ $rc -eq 0 ] || diag "staprun: status $rc: $(tail -n 3 /tmp/count.err | tr '\n' ' ')"
got=$(grep '^sync calls: ' /tmp/count.out 2>/dev/null)
if [ "$got" = 'sync calls: 3' ]; then
    ok "sync calls: 3"
else
    not_ok "sync calls: 3" "output: $(head -c 200 /tmp/count.out 2>/dev/null | tr '\n' '|')"
fi
