# task: 1
# title: function tracer filtered to mytrace_step: 5 calls from run_write

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
# Writing a name the kernel cannot trace fails (EINVAL); never enable the function
# tracer without a filter: it would trace every kernel function.
if echo mytrace_step > $T/set_ftrace_filter 2> /tmp/.err; then
    ok "set_ftrace_filter accepts mytrace_step: $(cat $T/set_ftrace_filter)"
else
    not_ok "set_ftrace_filter accepts mytrace_step" "no traceable function of that name: an inlined function has no entry of its own (noinline), a cloned one another name (__noclone)"
    grep mytrace $T/available_filter_functions | while IFS= read -r _l; do diag "available: $_l"; done
    exit 1
fi
echo function > $T/current_tracer
run 5 || not_ok "write 5 to run"
saved
n=$(count ": mytrace_step\( \[mytrace\]\)* <-run_write")
if [ "$n" = 5 ]; then ok "5 calls of mytrace_step from run_write traced"; else not_ok "5 calls of mytrace_step from run_write traced" "$n traced"; shown "mytrace_step"; fi
