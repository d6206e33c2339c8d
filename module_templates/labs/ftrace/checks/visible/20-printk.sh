# task: 2
# title: trace_printk: step 1 of 4 .. step 4 of 4

tracing_ready || { not_ok "tracefs ready"; exit 1; }
run 4 || not_ok "write 4 to run"
saved
grep -o "mytrace: step [0-9]* of [0-9]*" /tmp/trace > /tmp/got
printf "mytrace: step %s of 4\n" 1 2 3 4 > /tmp/want
if cmp -s /tmp/want /tmp/got; then ok "4 messages, in order"; else not_ok "4 messages, in order" "got $(wc -l < /tmp/got) messages"; shown "mytrace"; fi
