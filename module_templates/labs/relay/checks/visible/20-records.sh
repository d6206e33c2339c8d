# task: 2
# title: 5 records arrive complete and in order

reload || { not_ok "reload the module"; exit 1; }
if emit 5; then ok "write 5 to emit"; else not_ok "write 5 to emit"; fi
if reads_records 1 5; then ok "cpu0 reads records 1..5"; else not_ok "cpu0 reads records 1..5"; fi
if reads_records 1 0; then ok "read again: nothing new (the reader consumed them)"; else not_ok "read again: nothing new"; fi
