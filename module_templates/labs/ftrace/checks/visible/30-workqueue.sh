# task: 3
# title: workqueue events: mytrace_work_fn runs once per write, in a kworker

tracing_ready || { not_ok "tracefs ready"; exit 1; }
echo 1 > $T/events/workqueue/workqueue_execute_start/enable
run 3 || not_ok "write 3 to run"
saved
n=$(count "workqueue_execute_start: work struct [0-9a-fx]*: function mytrace_work_fn")
if [ "$n" = 1 ]; then ok "one workqueue_execute_start of mytrace_work_fn"; else not_ok "one workqueue_execute_start of mytrace_work_fn" "$n found"; shown "workqueue_execute_start"; fi
if grep "function mytrace_work_fn" /tmp/trace | grep -q "^ *kworker/"; then ok "a kworker ran it"; else not_ok "a kworker ran it"; fi
