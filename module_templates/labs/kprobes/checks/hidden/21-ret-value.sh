# task: 2
# title: nested shells: last_ret is the last return, not the first

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

r0=$(num "$ROOT/ret_hits")
# The outer shell calls getppid() first, the inner one last: their results differ.
# (the trailing ":" keeps the outer shell from exec'ing the inner one in its place)
set -- $(sh -c 'echo $PPID; sh -c "echo \$PPID"; :')
outer=$1 inner=$2
if [ -n "$inner" ] && [ "$outer" != "$inner" ]; then ok "the shells printed two different \$PPID"; else not_ok "the shells printed two different \$PPID" "outer $outer, inner $inner"; fi
if same "$ROOT/last_ret" "$inner\n"; then ok "last_ret is the inner shell's \$PPID ($inner), not the outer's ($outer)"; else not_ok "last_ret is the inner shell's \$PPID ($inner), not the outer's ($outer)"; fi
grew "$ROOT/ret_hits" "$r0" 2 "two shells"
if mode_is "$ROOT/last_ret" 444 && mode_is "$ROOT/ret_hits" 444; then ok "ret_hits and last_ret are read-only"; else not_ok "ret_hits and last_ret are read-only"; fi
