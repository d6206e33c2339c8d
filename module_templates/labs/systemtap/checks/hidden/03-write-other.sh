# task: 3
# title: write.stp follows another size, a failing write's return value, and only dd
# 2 writes of 777 bytes to /dev/null; a write to /dev/full fails with ENOSPC
# (-28); cat's writes are not dd's.
if [ ! -f "$STAP_KO_DIR/write.ko" ]; then
    not_ok "write.stp compiles" "$(tr '\n' ' ' < "$STAP_KO_DIR/write.err" 2>/dev/null | head -c 800)"
    return 0
fi
timeout -s INT 60 "$STAPRUN" -o /tmp/write.out -c 'sh -c "dd if=/dev/zero of=/dev/null bs=777 count=2 2>/dev/null; dd if=/dev/zero of=/dev/full bs=99 count=1 2>/dev/null; cat /proc/version > /dev/null"' "$STAP_KO_DIR/write.ko" 2>/tmp/write.err
n=$(grep -cx 'dd write 777' /tmp/write.out 2>/dev/null)
if [ "$n" = 2 ]; then ok "2 lines 'dd write 777'"; else not_ok "2 lines 'dd write 777'" "found ${n:-0}; output: $(head -c 300 /tmp/write.out 2>/dev/null | tr '\n' '|') $(tail -n 2 /tmp/write.err | tr '\n' ' ')"; fi
n=$(grep -cx 'dd wrote 777' /tmp/write.out 2>/dev/null)
if [ "$n" = 2 ]; then ok "2 lines 'dd wrote 777'"; else not_ok "2 lines 'dd wrote 777'" "found ${n:-0}"; fi
if grep -qx 'dd write 99' /tmp/write.out && grep -qx 'dd wrote -28' /tmp/write.out; then
    ok "a write to /dev/full returns -28 (ENOSPC)"
else
    not_ok "a write to /dev/full returns -28 (ENOSPC)" "output: $(head -c 300 /tmp/write.out 2>/dev/null | tr '\n' '|')"
fi
if grep -v -e '^dd write ' -e '^dd wrote ' /tmp/write.out | grep -q .; then
    not_ok "only dd's writes are printed" "other lines: $(grep -v -e '^dd write ' -e '^dd wrote ' /tmp/write.out | head -c 200 | tr '\n' '|')"
else
    ok "only dd's writes are printed"
fi
