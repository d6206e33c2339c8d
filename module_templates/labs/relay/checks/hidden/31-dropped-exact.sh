# task: 3
# title: no drop when it just fits; writing resumes once read

reload || { not_ok "reload the module"; exit 1; }
emit 2048 || not_ok "write 2048 to emit"
expect_read "$ROOT/dropped" "0\n"
emit 5 || not_ok "write 5 to emit"
expect_read "$ROOT/dropped" "5\n"
if reads_records 1 2048; then ok "records 1..2048 kept, 2049..2053 dropped"; else not_ok "records 1..2048 kept, 2049..2053 dropped"; fi
emit 3 || not_ok "write 3 to emit"
expect_read "$ROOT/dropped" "5\n"
if reads_records 2054 2056; then ok "once read, new records arrive again: 2054..2056"; else not_ok "once read, new records arrive again: 2054..2056"; fi
