# task: 1
# title: rmmod leaves no probe behind (a stale one crashes the next call)

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

L=/sys/kernel/debug/kprobes/list
# (it may name the address __do_sys_getppid: the same code on 6.1)
n=$(grep -c " k  *[_a-z]*sys_getppid+" $L)
if [ "$n" -ge 1 ]; then ok "kprobes/list shows the kprobe (k) on getppid"; else not_ok "kprobes/list shows the kprobe (k) on getppid" "none: is the kprobe registered?"; fi
rmmod "$MODULE" 2> /tmp/.err || { not_ok "rmmod" "$(cat /tmp/.err)"; exit 1; }
# A probe left registered after rmmod points into freed module memory: reading
# the list or the next getppid() oopses here, in this check, not in someone else's.
if grep -q "sys_getppid+" $L; then not_ok "no probe left after rmmod" "unregister every probe in the exit function"; else ok "no probe left after rmmod"; fi
if sh -c ':'; then ok "getppid() after rmmod"; else not_ok "getppid() after rmmod"; fi
insmod "$KO" 2> /tmp/.err || { not_ok "insmod again" "$(cat /tmp/.err)"; exit 1; }
