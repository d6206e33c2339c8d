# task: 1
# title: function_graph under run_write: mytrace_step exactly N times

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
t0=$(cat "$ROOT/total")
# Patch only the module's functions (the graph tracer would patch every kernel
# function otherwise: slow under emulation), and graph only below run_write.
echo ":mod:mytrace" > $T/set_ftrace_filter 2> /tmp/.err || not_ok "set_ftrace_filter: :mod:mytrace" "$(cat /tmp/.err)"
echo run_write > $T/set_graph_function 2> /tmp/.err || not_ok "set_graph_function: run_write" "$(cat /tmp/.err)"
echo function_graph > $T/current_tracer
run 3 || not_ok "write 3 to run"
saved
n=$(count "mytrace_step\( \[mytrace\]\)*()")
if [ "$n" = 3 ]; then ok "function_graph: run_write called mytrace_step 3 times"; else not_ok "function_graph: run_write called mytrace_step 3 times" "$n calls in the graph"; shown "run_write\|mytrace_step"; fi
expect_read "$ROOT/total" "$((t0 + 3))\n"
if put_fails "$ROOT/run" "0\n" "Invalid argument"; then ok "a write of 0 is refused"; else not_ok "a write of 0 is refused"; fi
