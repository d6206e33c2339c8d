# task: 1
# title: hello.stp prints exactly one line, twice in a row
if [ ! -f "$STAP_KO_DIR/hello.ko" ]; then
    not_ok "hello.stp compiles" "$(tr '\n' ' ' < "$STAP_KO_DIR/hello.err" 2>/dev/null | head -c 800)"
    return 0
fi
for i in 1 2; do
    read -r t0 _ < /proc/uptime
    timeout -s INT 30 "$STAPRUN" -o /tmp/hello.out "$STAP_KO_DIR/hello.ko" 2>/tmp/hello.err
    rc=$?
    read -r t1 _ < /proc/uptime
    secs=$((${t1%.*} - ${t0%.*}))
    if [ $rc -eq 0 ] && [ $secs -lt 30 ] && [ "$(cat /tmp/hello.out)" = 'hello systemtap!' ]; then
        ok "run $i: exactly 'hello systemtap!'"
    else
        not_ok "run $i: exactly 'hello systemtap!'" "status $rc after $secs s, output: $(head -c 200 /tmp/hello.out 2>/dev/null | tr '\n' '|') $(tail -n 2 /tmp/hello.err | tr '\n' ' ')"
    fi
done
