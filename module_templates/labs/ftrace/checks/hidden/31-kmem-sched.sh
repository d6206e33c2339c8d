# task: 3
# title: trace.sh events 5: kmem, sched_switch and workqueue events tell what the work did

trace events 5
line() { grep -n -e "$1" /tmp/trace | head -n 1 | cut -d: -f1; }
start=$(line "workqueue_execute_start: .*function mytrace_work_fn")
end=$(line "workqueue_execute_end: .*function mytrace_work_fn")
mark=$(line "trace.sh: the write of 5 returned")
if [ -n "$start" ] && [ -n "$end" ] && [ -n "$mark" ] && [ "$end" -lt "$mark" ]; then
    ok "the work ended before the write returned"
else
    not_ok "the work ended before the write returned" "execute_start at line ${start:-none}, execute_end at ${end:-none}, the write returned at ${mark:-none}: wait with flush_work()"
fi
alloc=$(grep -e "kmalloc: call_site=mytrace_work_fn" /tmp/trace)
if [ "$(echo "$alloc" | grep -c "bytes_req=320 ")" = 1 ]; then
    ok "one kmalloc of 320 bytes (5 x 64) in mytrace_work_fn"
else
    not_ok "one kmalloc of 320 bytes (5 x 64) in mytrace_work_fn"
    shown "kmalloc: call_site=mytrace_work_fn"
fi
ptr=$(echo "$alloc" | head -n 1 | sed -n "s/.* ptr=\([0-9a-fx]*\) .*/\1/p")
# kfree is the work function's last call, a tail call: its call_site may be the caller's.
if [ -n "$ptr" ] && [ "$(count "kfree: call_site=.* ptr=$ptr\$")" = 1 ]; then
    ok "kfree of the same pointer"
else
    not_ok "kfree of the same pointer (${ptr:-none})" "the buffer leaks"
fi
pid=$(grep -e "workqueue_execute_start: .*function mytrace_work_fn" /tmp/trace | head -n 1 | sed -n "s/^ *[^ ]*-\([0-9][0-9]*\) .*/\1/p")
slept=$(sed -n "${start:-1},${end:-1}p" /tmp/trace | grep -c "sched_switch: prev_comm=[^ ]* prev_pid=$pid prev_prio=[0-9]* prev_state=D ")
if [ -n "$pid" ] && [ "$slept" -ge 1 ]; then
    ok "the kworker (pid $pid) slept (state D) inside the work"
else
    not_ok "the kworker (pid ${pid:-?}) slept (state D) inside the work" "msleep() in mytrace_work_fn switches it out"
    shown "sched_switch: prev_comm=kworker"
fi
