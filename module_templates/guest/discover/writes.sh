# Every discovered file that is writable and reads one number or Y/N takes that
# same value written back, and reads it again.
_k=0
while read -r _md _p; do
    [ -f "$_p" ] || continue
    [ $((0$_md & 0200)) -ne 0 ] && [ $((0$_md & 0400)) -ne 0 ] || continue
    _value "$_p"
    [ -n "$_v" ] || continue
    _k=$((_k + 1))
    if ! printf '%s\n' "$_v" 2>"$DBGS_TMP/.err" > "$_p"; then
        not_ok "$_p takes its value $_v back" "the write failed: $(cat "$DBGS_TMP/.err")"
        continue
    fi
    _was=$_v
    _value "$_p"
    if [ "$_v" = "$_was" ]; then
        ok "$_p takes its value $_was back"
    else
        not_ok "$_p takes its value $_was back" "after writing $_was it reads '$_v'"
    fi
done < "$DBGS_TMP/.dbgs-modes"
[ $_k -gt 0 ] || skip "no writable file reads a single number or Y/N" ""
