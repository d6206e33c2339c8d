# Every discovered file whose mode allows reading reads without an error (an oops
# or a taint fails the check too). At most 1 MiB of each, within 5 s.
while read -r _md _p; do
    [ -f "$_p" ] || continue
    if [ $((0$_md & 0444)) -eq 0 ]; then
        skip "$_p reads" "mode $_md: not readable"
    elif timeout 5 dd if="$_p" of=/dev/null bs=4096 count=256 2>"$DBGS_TMP/.err"; then
        ok "$_p reads"
    else
        not_ok "$_p reads" "read failed: $(grep -v records "$DBGS_TMP/.err" | head -c 200)"
    fi
done < "$DBGS_TMP/.dbgs-modes"
