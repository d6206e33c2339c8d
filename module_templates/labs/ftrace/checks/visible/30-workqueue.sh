# task: 3
# title: trace.sh events 3: mytrace_work_fn runs once per write, in a kworker

trace events 3
n=$(count "workqueue_execute_start: work struct [0-9a-fx]*: function mytrace_work_fn")
if [ "$n" = 1 ]; then ok "one workqueue_execute_start of mytrace_work_fn"; else not_ok "one workqueue_execute_start of mytrace_work_fn" "$n in the trace of 'trace.sh events 3'"; shown "workqueue_execute_start"; fi
if grep "function mytrace_work_fn" /tmp/trace | grep -q "^ *kworker/"; then ok "a kworker ran it"; else not_ok "a kworker ran it"; fi
