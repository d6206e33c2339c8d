# task: 1
# title: the relay buffer file cpu0 exists and reads empty

if [ -f "$ROOT/cpu0" ]; then ok "$ROOT/cpu0 is a file"; else not_ok "$ROOT/cpu0 is a file" "no $ROOT/cpu0: did relay_open() run, and does create_buf_file create it?"; fi
if reads_records 1 0; then ok "nothing to read before any record"; else not_ok "nothing to read before any record"; fi
