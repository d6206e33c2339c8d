# task: 1
# title: hello.stp prints "hello systemtap!" and ends by itself
# $STAPRUN runs a module (staprun, packed into the guest); $STAP_KO_DIR holds
# one module per script of yours, named after it (hello.stp -> hello.ko).
if [ ! -f "$STAP_KO_DIR/hello.ko" ]; then
    not_ok "hello.stp compiles" "$(tr '\n' ' ' < "$STAP_KO_DIR/hello.err" 2>/dev/null | head -c 800)"
    return 0
fi
read -r t0 _ < /proc/uptime
timeout -s INT 30 "$STAPRUN" -o /tmp/hello.out "$STAP_KO_DIR/hello.ko" 2>/tmp/hello.err
rc=$?
read -r t1 _ < /proc/uptime
secs=$((${t1%.*} - ${t0%.*}))
# A session without exit() runs until stopped: timeout's SIGINT ends it cleanly (status 0).
if [ $rc -eq 0 ] && [ $secs -lt 30 ]; then
    ok "staprun ends by itself with status 0 (the script called exit())"
else
    not_ok "staprun ends by itself with status 0 (the script called exit())" "staprun: status $rc after $secs s (stopped at 30 s): $(tail -n 3 /tmp/hello.err | tr '\n' ' ')"
fi
if grep -qx 'hello systemtap!' /tmp/hello.out 2>/dev/null; then
    ok "the output has the line: hello systemtap!"
else
    not_ok "the output has the line: hello systemtap!" "output: $(head -c 200 /tmp/hello.out 2>/dev/null | tr '\n' '|')"
fi
