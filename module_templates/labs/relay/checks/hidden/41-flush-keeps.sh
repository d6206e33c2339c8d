# task: 4
# title: flush keeps what was written

reload || { not_ok "reload the module"; exit 1; }
emit 3 || not_ok "write 3 to emit"
put_ok "$ROOT/flush" "\n" || not_ok "write to flush"
if reads_records 1 3; then ok "records 1..3 survive a flush"; else not_ok "records 1..3 survive a flush" "flush must not discard (that is relay_reset)"; fi
emit 2 || not_ok "write 2 to emit"
if reads_records 4 5; then ok "then records 4..5"; else not_ok "then records 4..5"; fi
