# task: 1
# title: trace.sh graph 3: function_graph under run_write, mytrace_step exactly 3 times

t0=$(cat "$ROOT/total")
trace graph 3
n=$(count "mytrace_step\( \[mytrace\]\)*()")
if [ "$n" = 3 ]; then ok "function_graph: run_write called mytrace_step 3 times"; else not_ok "function_graph: run_write called mytrace_step 3 times" "$n calls in the graph of 'trace.sh graph 3'"; shown "run_write\|mytrace_step"; fi
# Unfiltered, the graph tracer patches every kernel function (slow under emulation)
# and the graph shows the kernel functions run_write calls.
if grep -q "kstrtouint_from_user\|queue_work_on\|flush_work" /tmp/trace; then
    not_ok "only mytrace's functions are graphed" "the graph shows kernel functions: set_ftrace_filter to :mod:mytrace"
    shown "kstrtouint_from_user\|queue_work_on\|flush_work"
else
    ok "only mytrace's functions are graphed"
fi
expect_read "$ROOT/total" "$((t0 + 3))\n"
if put_fails "$ROOT/run" "0\n" "Invalid argument"; then ok "a write of 0 is refused"; else not_ok "a write of 0 is refused"; fi
