# The ftrace lab's check library: sourced before each check (docs/labs-format.md).

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
