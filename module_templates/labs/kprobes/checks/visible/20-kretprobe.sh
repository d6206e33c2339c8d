# task: 2
# title: 3 shells: ret_hits grows by 3, last_ret is what getppid returned

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

# one getppid first from another parent (a subshell that forks sh, not execs it): a
# last_ret that kept the first return value since the load would show that one
first=$( (sh -c 'echo $PPID'; :) )
r0=$(num "$ROOT/ret_hits")
shells 3
grew "$ROOT/ret_hits" "$r0" 3 "3 shells, 3 returns"
if same "$ROOT/last_ret" "$ppid\n"; then ok "last_ret is the last shell's \$PPID ($ppid)"; else not_ok "last_ret is the last shell's \$PPID ($ppid)"; fi
