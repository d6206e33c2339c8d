# task: 2
# title: trace.sh printk 2 3: the messages come from mytrace_step, numbered per write

trace printk 2 3
grep -o "mytrace_step\( \[mytrace\]\)*: mytrace: step [0-9]* of [0-9]*" /tmp/trace | sed "s/.*: mytrace: /mytrace: /" > /tmp/got
printf "mytrace: step %s\n" "1 of 2" "2 of 2" "1 of 3" "2 of 3" "3 of 3" > /tmp/want
if cmp -s /tmp/want /tmp/got; then ok "5 messages by mytrace_step: 1..2 of 2, 1..3 of 3"; else not_ok "5 messages by mytrace_step: 1..2 of 2, 1..3 of 3" "trace_printk must be in mytrace_step (the line names the function that called it)"; shown "mytrace"; fi
if grep -q "mytrace: step" $T/printk_formats; then ok "printk_formats lists the format (trace_printk records only its address)"; else not_ok "printk_formats lists the format" "was the format a string literal?"; fi
