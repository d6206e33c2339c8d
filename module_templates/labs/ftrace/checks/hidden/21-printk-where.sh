# task: 2
# title: the messages come from mytrace_step, numbered per write

T=/sys/kernel/tracing
# tracing_ready: tracefs mounted; the nop tracer, no filter, no event, an empty buffer, recording
tracing_ready() {
    if [ ! -e $T/trace ] && ! mount -t tracefs nodev $T 2> /tmp/.err; then
        diag "mount -t tracefs nodev $T: $(cat /tmp/.err)"
        return 1
    fi
    echo 0 > $T/tracing_on
    echo nop > $T/current_tracer
    echo > $T/set_ftrace_filter
    echo > $T/set_graph_function
    echo 0 > $T/events/enable
    echo > $T/trace
    echo 1 > $T/tracing_on
}
# saved: stop recording, keep the trace without its # header in /tmp/trace, reset
# (read it before changing current_tracer: a new tracer empties the buffer)
saved() {
    echo 0 > $T/tracing_on
    grep -v '^#' $T/trace > /tmp/trace
    tracing_ready
}
# run N: write N to $ROOT/run
run() { put_ok "$ROOT/run" "$1\n"; }
# count PATTERN: lines of the saved trace matching the grep PATTERN
count() { grep -c -e "$1" /tmp/trace; }
# shown PATTERN: diagnostics with the saved trace's lines matching PATTERN (at most 8)
shown() { grep -e "$1" /tmp/trace | head -n 8 | while IFS= read -r _l; do diag "  $_l"; done; }

tracing_ready || { not_ok "tracefs ready"; exit 1; }
run 2 && run 3 || not_ok "write 2, then 3, to run"
saved
grep -o "mytrace_step\( \[mytrace\]\)*: mytrace: step [0-9]* of [0-9]*" /tmp/trace | sed "s/.*: mytrace: /mytrace: /" > /tmp/got
printf "mytrace: step %s\n" "1 of 2" "2 of 2" "1 of 3" "2 of 3" "3 of 3" > /tmp/want
if cmp -s /tmp/want /tmp/got; then ok "5 messages by mytrace_step: 1..2 of 2, 1..3 of 3"; else not_ok "5 messages by mytrace_step: 1..2 of 2, 1..3 of 3" "trace_printk must be in mytrace_step (the line names the function that called it)"; shown "mytrace"; fi
if grep -q "mytrace: step" $T/printk_formats; then ok "printk_formats lists the format (trace_printk records only its address)"; else not_ok "printk_formats lists the format" "was the format a string literal?"; fi
