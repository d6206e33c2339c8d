# task: 4
# title: flush ends the sub-buffer: the next records start a new one

reload || { not_ok "reload the module"; exit 1; }
emit 1 || not_ok "write 1 to emit"
if put_ok "$ROOT/flush" "1\n"; then ok "write to flush"; else not_ok "write to flush"; fi
emit 2100 || not_ok "write 2100 to emit"
# Record 1 and the padding after it fill sub-buffer 0; 7 x 256 more fit in the other 7.
if reads_records 1 1793; then ok "records 1..1793: the flushed sub-buffer holds only record 1"; else not_ok "records 1..1793: the flushed sub-buffer holds only record 1" "relay_flush() pads the current sub-buffer and hands it to the reader"; fi
