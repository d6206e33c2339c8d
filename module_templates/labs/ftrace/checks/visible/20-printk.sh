# task: 2
# title: trace.sh printk 4: trace_printk's step 1 of 4 .. step 4 of 4

trace printk 4
grep -o "mytrace: step [0-9]* of [0-9]*" /tmp/trace > /tmp/got
printf "mytrace: step %s of 4\n" 1 2 3 4 > /tmp/want
if cmp -s /tmp/want /tmp/got; then ok "4 messages, in order"; else not_ok "4 messages, in order" "got $(wc -l < /tmp/got) messages in the trace of 'trace.sh printk 4'"; shown "mytrace"; fi
