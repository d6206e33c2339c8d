# task: 3
# title: a full buffer drops records and counts them

reload || { not_ok "reload the module"; exit 1; }
expect_read "$ROOT/dropped" "0\n"
if emit 2100; then ok "write 2100 to emit (the buffer holds 2048)"; else not_ok "write 2100 to emit"; fi
expect_read "$ROOT/dropped" "52\n"
if reads_records 1 2048; then ok "the first 2048 records were kept"; else not_ok "the first 2048 records were kept" "did subbuf_start refuse to switch when the buffer is full?"; fi
