# task: 3
# title: a function that cannot be probed fails insmod and leaves nothing behind

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

n0=$(grep -c . /sys/kernel/debug/kprobes/list)
rmmod "$MODULE" 2> /tmp/.err || { not_ok "rmmod" "$(cat /tmp/.err)"; exit 1; }
for sym in no_such_function_dbgs kprobe_int3_handler; do
    if insmod "$KO" symbol=$sym 2> /tmp/.err; then
        not_ok "insmod symbol=$sym fails" "it loaded; register_kprobe's error must be init's"
        rmmod "$MODULE"
    else
        ok "insmod symbol=$sym fails: $(cat /tmp/.err)"
    fi
    if [ -e "$ROOT" ]; then not_ok "no $ROOT after the failed insmod" "remove what init created before failing"; else ok "no $ROOT after the failed insmod"; fi
done
if insmod "$KO" 2> /tmp/.err; then ok "then a normal insmod works"; else not_ok "then a normal insmod works" "$(cat /tmp/.err)"; fi
for f in hits ret_hits last_ret; do
    if [ -f "$ROOT/$f" ]; then ok "$ROOT/$f is there"; else not_ok "$ROOT/$f is there"; fi
done
n1=$(grep -c . /sys/kernel/debug/kprobes/list)
if [ "$n1" = "$n0" ]; then ok "no probe left registered ($n1 in kprobes/list)"; else not_ok "no probe left registered" "kprobes/list had $n0 lines, now $n1"; fi
