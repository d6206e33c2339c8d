# task: 3
# title: insmod symbol=__x64_sys_sync: sync counts, sh does not

# num FILE: what FILE reads (a number), or a diagnostic and nothing
num() { cat "$1" 2> /tmp/.err || diag "reading $1 failed: $(cat /tmp/.err)"; }
# shells K: start K busybox shells, each calls getppid() once as it starts;
# the last one printed its $PPID (what getppid returned) into $ppid
shells() { i=0; while [ $i -lt "$1" ]; do ppid=$(sh -c 'echo $PPID'); i=$((i + 1)); done; }
# grew FILE BEFORE K WHAT: FILE now reads BEFORE + K
grew() {
    _now=$(num "$1")
    if [ -n "$2" ] && [ -n "$_now" ] && [ "$_now" = $(($2 + $3)) ]; then
        ok "$4: $1 went from $2 to $_now"
    else
        not_ok "$4: $1 went from ${2:-?} to ${_now:-?}, expected +$3"
    fi
}
# load [ARGS]: rmmod and insmod the module again with ARGS
load() {
    rmmod "$MODULE" 2> /tmp/.err || { diag "rmmod: $(cat /tmp/.err)"; return 1; }
    insmod "$KO" "$@" 2> /tmp/.err || { diag "insmod $*: $(cat /tmp/.err)"; return 1; }
}

if load symbol=__x64_sys_sync; then ok "insmod $MODULE symbol=__x64_sys_sync"; else not_ok "insmod $MODULE symbol=__x64_sys_sync"; load; exit 1; fi
h0=$(num "$ROOT/hits"); r0=$(num "$ROOT/ret_hits")
sync; sync; sync; sync
grew "$ROOT/hits" "$h0" 4 "4 syncs"
grew "$ROOT/ret_hits" "$r0" 4 "4 syncs"
expect_read "$ROOT/last_ret" "0\n"
h0=$(num "$ROOT/hits")
shells 2
grew "$ROOT/hits" "$h0" 0 "2 shells (getppid is not probed now)"
if load; then ok "back to the default symbol"; else not_ok "back to the default symbol"; fi
