# task: 1
# title: function_graph under run_write: mytrace_step exactly N times

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
