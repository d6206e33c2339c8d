# task: 2
# title: count.stp counts 5 sync(2) calls, and 0 when there is none
if [ ! -f "$STAP_KO_DIR/count.ko" ]; then
    not_ok "count.stp compiles" "$(tr '\n' ' ' < "$STAP_KO_DIR/count.err" 2>/dev/null | head -c 800)"
    return 0
fi
timeout -s INT 60 "$STAPRUN" -o /tmp/count.out -c 'sh -c "sync; sync; sync; sync; sync"' "$STAP_KO_DIR/count.ko" 2>/tmp/count.err
got=$(grep '^sync calls: ' /tmp/count.out 2>/dev/null)
if [ "$got" = 'sync calls: 5' ]; then ok "sync calls: 5"; else not_ok "sync calls: 5" "output: $(head -c 200 /tmp/count.out 2>/dev/null | tr '\n' '|') $(tail -n 2 /tmp/count.err | tr '\n' ' ')"; fi
timeout -s INT 60 "$STAPRUN" -o /tmp/count.out -c 'true' "$STAP_KO_DIR/count.ko" 2>/tmp/count.err
got=$(grep '^sync calls: ' /tmp/count.out 2>/dev/null)
if [ "$got" = 'sync calls: 0' ]; then ok "sync calls: 0"; else not_ok "sync calls: 0" "output: $(head -c 200 /tmp/count.out 2>/dev/null | tr '\n' '|') $(tail -n 2 /tmp/count.err | tr '\n' ' ')"; fi
