#!/bin/sh
# trace.sh MODE N...: trace writes of N (each N in turn) to mytrace's run file,
# then print the trace (without its # header lines) on stdout.
#
#   sh trace.sh function 5    the function tracer, filtered to mytrace_step
#   sh trace.sh graph 3       function_graph below run_write
#   sh trace.sh printk 4      no tracer: the trace_printk messages only
#   sh trace.sh events 5      the workqueue, kmem and sched_switch events
#
# After each write it writes "trace.sh: the write of N returned" to trace_marker.
# Errors go to stderr, with exit status 1. The checks run this script and parse
# what it prints.

T=/sys/kernel/tracing
RUN=/sys/kernel/debug/mytrace/run

fail() {
    echo "trace.sh: $*" >&2
    exit 1
}

# reset: nothing traced, an empty buffer, recording off. trace_printk's messages
# are off too: in the other modes they would be noise in the trace.
reset() {
    echo 0 > $T/tracing_on
    echo nop > $T/current_tracer
    echo > $T/set_ftrace_filter
    echo > $T/set_graph_function
    echo 0 > $T/events/enable
    echo 0 > $T/options/trace_printk
    echo > $T/trace
}

[ $# -ge 2 ] || fail "usage: trace.sh function|graph|printk|events N..."
mode=$1
shift
[ -e $T/trace ] || mount -t tracefs nodev $T || fail "cannot mount tracefs on $T"
[ -e $RUN ] || fail "no $RUN: is mytrace loaded?"
reset

case $mode in
function)
    # TODO 1: the function tracer, only on mytrace_step (set_ftrace_filter refuses a name it cannot trace: fail then)
    echo mytrace_step > $T/set_ftrace_filter || fail "set_ftrace_filter refused mytrace_step: is it noinline and __noclone?"
    echo function > $T/current_tracer
    # END TODO 1
    ;;
graph)
    # TODO 1: function_graph below run_write, patching only mytrace's functions (:mod:mytrace)
    echo :mod:mytrace > $T/set_ftrace_filter || fail "set_ftrace_filter refused :mod:mytrace"
    echo run_write > $T/set_graph_function || fail "set_graph_function refused run_write"
    echo function_graph > $T/current_tracer
    # END TODO 1
    ;;
printk)
    # TODO 2: record trace_printk's messages (reset turned its option off), and nothing else
    echo 1 > $T/options/trace_printk
    # END TODO 2
    ;;
events)
    # TODO 3: the events of the work item: workqueue_execute_start and _end, kmalloc, kfree, sched_switch
    for e in workqueue/workqueue_execute_start workqueue/workqueue_execute_end \
             kmem/kmalloc kmem/kfree sched/sched_switch; do
        echo 1 > $T/events/$e/enable || fail "cannot enable the event $e"
    done
    # END TODO 3
    ;;
*)
    fail "unknown mode '$mode': use function, graph, printk or events"
    ;;
esac

status=0
echo 1 > $T/tracing_on
for n in "$@"; do
    # printf and echo are ash builtins: no fork between the write returning and the marker
    printf '%s\n' "$n" > $RUN || { echo "trace.sh: writing $n to $RUN failed" >&2; status=1; }
    echo "trace.sh: the write of $n returned" > $T/trace_marker
done
echo 0 > $T/tracing_on
# Read the trace before changing current_tracer: a new tracer empties the buffer.
grep -v '^#' $T/trace
reset
exit $status
