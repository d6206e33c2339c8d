# The ftrace lab's check library: sourced before each check (docs/labs-format.md).

T=/sys/kernel/tracing
# trace MODE N...: run the student's trace.sh; what it prints (the trace) in
# /tmp/trace. If it fails: a failing result with its messages. Then tracing is
# reset whatever the script left on (a function tracer slows the whole guest).
trace() {
    if [ ! -f "$PROJECT/trace.sh" ]; then
        : > /tmp/trace
        trace_reset
        not_ok "trace.sh $*" "no trace.sh in your project: restore it from a new skeleton (dbgscaffold lab start ftrace DIR)"
        return 1
    fi
    sh "$PROJECT/trace.sh" "$@" > /tmp/trace 2> /tmp/.trace-err
    _rc=$?
    trace_reset
    [ $_rc -eq 0 ] && return 0
    not_ok "trace.sh $* exits 0" "it exited $_rc"
    while IFS= read -r _l; do diag "  $_l"; done < /tmp/.trace-err
    return 1
}
# trace_reset: tracefs mounted; the nop tracer, no filter, no event, an empty buffer
trace_reset() {
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
}
# count PATTERN: lines of the trace matching the grep PATTERN
count() { grep -c -e "$1" /tmp/trace; }
# shown PATTERN: diagnostics with the trace's lines matching PATTERN (at most 8)
shown() { grep -e "$1" /tmp/trace | head -n 8 | while IFS= read -r _l; do diag "  $_l"; done; }
