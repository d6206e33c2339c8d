# What the modules created (found by listing before and after insmod): one result
# each, with its mode; a world-writable file fails (any user could write it).
discover_created $MODULES
discover_modes
_n=$(wc -l < "$DBGS_TMP/.dbgs-created")
[ "$_n" -gt 0 ] || skip "nothing in debugfs, /proc or module parameters" "the modules created none"
[ "$_n" -gt "$DBGS_DISCOVER_MAX" ] && diag "$((_n - DBGS_DISCOVER_MAX)) more not listed (at most $DBGS_DISCOVER_MAX)"
while read -r _md _p; do
    if [ -d "$_p" ]; then
        ok "$_p/ (directory, mode $_md)"
    elif [ $((0$_md & 2)) -ne 0 ]; then
        not_ok "$_p (mode $_md)" "world-writable: any user can write it; debugfs and sysfs files must not be"
    else
        ok "$_p (mode $_md)"
    fi
done < "$DBGS_TMP/.dbgs-modes"
