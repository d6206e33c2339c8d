# task: 2
# title: numbering goes on across writes; bad counts are refused

reload || { not_ok "reload the module"; exit 1; }
emit 3 && emit 4 || not_ok "write 3, then 4, to emit"
if reads_records 1 7; then ok "two writes: records 1..7, numbered on"; else not_ok "two writes: records 1..7, numbered on"; fi
if put_fails "$ROOT/emit" "abc\n" "Invalid argument"; then ok "a write of abc fails with EINVAL"; else not_ok "a write of abc fails with EINVAL"; fi
if emit 0 && reads_records 1 0; then ok "a write of 0 writes nothing"; else not_ok "a write of 0 writes nothing"; fi
if emit 300 && reads_records 8 307; then ok "300 records across a sub-buffer boundary: 8..307"; else not_ok "300 records across a sub-buffer boundary: 8..307"; fi
