# task: 3
# title: write.stp shows dd's 3 writes of 1234 bytes, argument and return value
if [ ! -f "$STAP_KO_DIR/write.ko" ]; then
    not_ok "write.stp compiles" "$(tr '\n' ' ' < "$STAP_KO_DIR/write.err" 2>/dev/null | head -c 800)"
    return 0
fi
timeout -s INT 60 "$STAPRUN" -o /tmp/write.out -c 'dd if=/dev/zero of=/dev/null bs=1234 count=3' "$STAP_KO_DIR/write.ko" 2>/tmp/write.err
rc=$?
[ $rc -eq 0 ] || diag "staprun: status $rc: $(tail -n 3 /tmp/write.err | tr '\n' ' ')"
n=$(grep -cx 'dd write 1234' /tmp/write.out 2>/dev/null)
if [ "$n" = 3 ]; then ok "3 lines 'dd write 1234'"; else not_ok "3 lines 'dd write 1234'" "found ${n:-0}; output: $(head -c 300 /tmp/write.out 2>/dev/null | tr '\n' '|')"; fi
n=$(grep -cx 'dd wrote 1234' /tmp/write.out 2>/dev/null)
if [ "$n" = 3 ]; then ok "3 lines 'dd wrote 1234'"; else not_ok "3 lines 'dd wrote 1234'" "found ${n:-0}; output: $(head -c 300 /tmp/write.out 2>/dev/null | tr '\n' '|')"; fi
