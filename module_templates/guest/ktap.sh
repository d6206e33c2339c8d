# dbgscaffold guest check library (busybox ash). Sourced by the generated
# checks and by your own tests/*.sh; results go to fd 3 (the results port) as KTAP.
#
# In your own tests/*.sh (each runs as one check, its results a KTAP subtest):
#   ok "description"            a passing result
#   not_ok "description" [why]  a failing result (the check fails)
#   skip "description" [why]    a skipped result
#   diag "text"                 a '# ' diagnostic line
#   expect_read FILE BYTES      ok/not_ok on FILE reading exactly BYTES (a printf format)
# Variables: $MODULE (module name), $ROOT (/sys/kernel/debug/<root>), $KO (the .ko path).

: "${DBGS_INDENT:=}"
: "${DBGS_TMP:=/tmp}"
# Overridable so the library can be tested on a host without touching its log or power.
: "${DBGS_KMSG:=/dev/kmsg}"
# Without ACPI (a tinyconfig kernel) poweroff only halts and QEMU stays; a reboot under
# QEMU's -no-reboot ends it on every kernel (initramfs.POWER_OFF does the same for /init).
dbgs_poweroff() { [ -d /sys/firmware/acpi ] && poweroff -f; reboot -f; }
: "${DBGS_POWEROFF:=dbgs_poweroff}"
DBGS_N=0
DBGS_FAILED=0
# Every line to the results port starts with this payload's token, which the host made
# after the module was built and sent with the payload (vm/agent.py): a line without it
# (a module writing to the port, a program the checks run) is no result. The agent sets
# it as a shell variable, never exported: what the checks run does not inherit it, and
# no /proc/PID/environ shows it. (Empty when the library runs on a host, in the tests.)
: "${_dbgs_tag:=}"

_dbgs_res() { printf '%s%s\n' "$_dbgs_tag" "$1" >&3; }
diag() { printf '%s%s# %s\n' "$_dbgs_tag" "$DBGS_INDENT" "$*" >&3; }

_result() { # status description [directive]
    DBGS_N=$((DBGS_N + 1))
    if [ -n "$3" ]; then
        printf '%s%s%s %d %s # %s\n' "$_dbgs_tag" "$DBGS_INDENT" "$1" "$DBGS_N" "$2" "$3" >&3
    else
        printf '%s%s%s %d %s\n' "$_dbgs_tag" "$DBGS_INDENT" "$1" "$DBGS_N" "$2" >&3
    fi
}

ok() { _result ok "$1"; }
not_ok() { [ -n "$2" ] && diag "$2"; DBGS_FAILED=1; _result 'not ok' "$1"; }
skip() { _result ok "$1" "SKIP${2:+ $2}"; }

# show FILE: its bytes, escaped, for a diagnostic
_shown() { od -An -c -v "$1" 2>/dev/null | tr -s ' ' | tr -d '\n' | head -c 300; }

# same FILE FORMAT: FILE's content is exactly the bytes printf FORMAT makes
same() {
    printf "$2" > $DBGS_TMP/.want
    # the passing path reads FILE once, in cmp; a mismatch is read again to show it
    cmp -s $DBGS_TMP/.want "$1" 2>/dev/null && return 0
    if ! cat "$1" > $DBGS_TMP/.got 2>$DBGS_TMP/.err; then
        diag "read $1 failed: $(cat $DBGS_TMP/.err)"
        return 1
    fi
    diag "read:     $(_shown $DBGS_TMP/.got)"
    diag "expected: $(_shown $DBGS_TMP/.want)"
    cmp -s $DBGS_TMP/.want $DBGS_TMP/.got && diag "(the second read gave the expected bytes: the content changes from read to read)"
    return 1
}

expect_read() { if same "$1" "$2"; then ok "read $1"; else not_ok "read $1"; fi; }

# put FILE FORMAT: one write(2) of the bytes printf FORMAT makes; fails like the write did
put() {
    printf "$2" > $DBGS_TMP/.put
    dd if=$DBGS_TMP/.put of="$1" bs=65536 conv=notrunc 2>$DBGS_TMP/.err >/dev/null
}

# put_fails FILE FORMAT [ERRNO-TEXT]: the write must fail (with that message, if given)
put_fails() {
    if put "$1" "$2"; then
        diag "writing $(_shown $DBGS_TMP/.put) to $1 succeeded; it should fail${3:+ with '$3'}"
        return 1
    fi
    if [ -n "$3" ] && ! grep -q "$3" $DBGS_TMP/.err; then
        diag "the write failed, but not with '$3': $(cat $DBGS_TMP/.err)"
        return 1
    fi
}

put_ok() {
    if ! put "$1" "$2"; then
        diag "writing $(_shown $DBGS_TMP/.put) to $1 failed: $(cat $DBGS_TMP/.err)"
        return 1
    fi
}

mode_is() { # PATH OCTAL
    m=$(stat -c %a "$1" 2>&1) || { diag "stat $1: $m"; return 1; }
    [ "$m" = "$2" ] || { diag "mode of $1 is $m, expected $2"; return 1; }
}

# _alive PID: the process exists and is not a zombie.
_alive() {
    [ -r /proc/$1/status ] || return 1
    while read -r _k _v _; do
        [ "$_k" = State: ] && { [ "$_v" != Z ]; return; }
    done < /proc/$1/status 2>/dev/null
    return 1
}

# _walk PID [SIGNAL]: PID and all its descendants in $_tree, each sent SIGNAL (if
# given) before its children are listed, so a stopped process forks no more.
_walk() {
    _tree=; _todo=$1
    while [ -n "$_todo" ]; do
        _next=
        for _p in $_todo; do
            [ -n "$2" ] && kill -$2 $_p 2>/dev/null
            _tree="$_tree $_p"
            _c=  # the file has no final newline: read fails yet sets _c
            read -r _c < /proc/$_p/task/$_p/children 2>/dev/null
            _next="$_next $_c"
        done
        _todo=$_next
    done
}

# _in_module PID: its kernel stack has a module's frame ("... [name]").
_in_module() {
    while read -r _l; do
        case $_l in *" ["*"]") return 0 ;; esac
    done < /proc/$1/stack 2>/dev/null
    return 1
}

# _timed_out N NAME PID T0 LIMIT: check N (started at uptime T0) outlived LIMIT seconds.
# A task in a module's code is stuck there: no signal, since a pending one can turn an
# interruptible sleep loop into a busy loop that starves the guest. Otherwise SIGKILL
# the tree; what is still there a second later is stuck in the kernel. Stuck: show
# where, bail out, power off.
_timed_out() {
    echo "dbgscaffold: check $1 exceeded its limit of $5 s" > "$DBGS_KMSG"
    _walk $3
    _left=
    for _p in $_tree; do _in_module $_p && _left="$_left $_p"; done
    _why="is in the module's code"
    if [ -z "$_left" ]; then
        _walk $3 STOP
        kill -KILL $_tree 2>/dev/null
        _i=0
        while :; do
            _left=
            for _p in $_tree; do _alive $_p && _left="$_left $_p"; done
            [ -z "$_left" ] && return 0
            [ $_i -ge 10 ] && break
            sleep 0.1
            _i=$((_i + 1))
        done
        _why="survived SIGKILL"
    fi
    # No "end check": the check never ended, so later kernel reports are still its.
    echo "dbgscaffold: check $1 is stuck in the kernel" > "$DBGS_KMSG"
    read -r _t1 _ < /proc/uptime
    _dbgs_res "# uptime: $4 $_t1"
    for _p in $_left; do
        _comm=?; read -r _comm < /proc/$_p/comm 2>/dev/null
        diag "$_comm (pid $_p) $_why; its kernel stack:"
        while read -r _l; do diag "  $_l"; done < /proc/$_p/stack 2>/dev/null
    done
    _dbgs_res "not ok $1 $2 # TIMEOUT per-check limit $5 s"
    _dbgs_res "Bail out! check $1 is stuck in the kernel"
    $DBGS_POWEROFF
}

# The watchdog: one background shell for the whole run. run_check tells it on a FIFO
# (fd 5) "N PID T0 NAME" when a check starts and "end" when the check's process has
# ended, then reads its verdict from another (fd 6): "ok", or "late" once it has
# killed the check's tree. `read -t` is its timer, so a check costs no process of
# its own (a fork and an exec each cost milliseconds under TCG).
_watchdog() {
    while :; do
        # Between checks: wake now and then, and leave once the run's shell is gone.
        if ! read -r -t 2 _n _p _t0 _lim _d <&5; then
            _st=Z; read -r _ _ _st _ < /proc/$$/stat 2>/dev/null  # ash's $$: the run's shell
            [ "$_st" = Z ] && exit 0
            continue
        fi
        [ "$_n" = quit ] && exit 0
        if read -r -t "$_lim" _e <&5; then
            echo ok >&6
            continue
        fi
        _timed_out "$_n" "$_d" "$_p" "$_t0" "$_lim"  # returns once the tree is gone
        read -r _e <&5
        echo late >&6
    done
}

_watchdog_start() {
    [ -n "${DBGS_WD:-}" ] && return 0
    rm -f "$DBGS_TMP/.wd5" "$DBGS_TMP/.wd6"
    mkfifo "$DBGS_TMP/.wd5" "$DBGS_TMP/.wd6"
    # read-write: opening never blocks, and neither pipe ever sees EOF
    exec 5<>"$DBGS_TMP/.wd5" 6<>"$DBGS_TMP/.wd6"
    rm -f "$DBGS_TMP/.wd5" "$DBGS_TMP/.wd6"
    _watchdog > /dev/null 2>&1 &  # its reports go to fd 3 and kmsg
    DBGS_WD=$!
}

# run_check N DESCRIPTION FUNCTION [LIMIT]: one top-level result, with kmsg markers,
# the taint before and after, and the time it took. With DBGS_CHECK_TIMEOUT set
# (whole seconds; LIMIT instead for a check that needs longer, e.g. kmemleak's) a
# check that outlives it is killed and reported TIMEOUT.
# dd, not cat: it runs in the forked shell without an exec. Not `read`: it reads a
# byte per read(2) and a sysctl returns nothing past offset 0.
run_check() {
    read -r t0 _ < /proc/uptime
    # Nothing runs between two checks: the last one's "after" is this one's "before".
    taint0=${DBGS_TAINT:-$(dd if=/proc/sys/kernel/tainted 2>/dev/null)}
    echo "dbgscaffold: begin check $1" > "$DBGS_KMSG"
    _late=
    _limit=${4:-${DBGS_CHECK_TIMEOUT:-}}
    if [ -n "${DBGS_CHECK_TIMEOUT:-}" ]; then
        _watchdog_start
        ( "$3" ) &
        _pid=$!
        echo "$1 $_pid $t0 $_limit $2" >&5
        wait $_pid
        rc=$?
        echo end >&5
        read -r _verdict <&6
        [ "$_verdict" = late ] && _late=1
    else
        ( "$3" )
        rc=$?
    fi
    echo "dbgscaffold: end check $1" > "$DBGS_KMSG"
    taint1=$(dd if=/proc/sys/kernel/tainted 2>/dev/null)
    DBGS_TAINT=$taint1
    read -r t1 _ < /proc/uptime
    DBGS_N=$(($1 - 1))
    _dbgs_res "# uptime: $t0 $t1"
    [ "$taint0" = "$taint1" ] || _dbgs_res "# taint: $taint0 -> $taint1"
    if [ -n "$_late" ]; then
        diag "killed after $_limit s"
        _result 'not ok' "$2" "TIMEOUT per-check limit $_limit s"
    else
        case $rc in
            0) _result ok "$2" ;;
            4) _result ok "$2" SKIP ;;
            *) _result 'not ok' "$2" ;;
        esac
    fi
    # An oops (taint D) leaves locks held and files busy: rmmod would hang. Stop here.
    if [ $((taint1 & 128)) -ne 0 ] && [ $((taint0 & 128)) -eq 0 ]; then
        _dbgs_res "Bail out! the kernel oopsed during check $1"
        $DBGS_POWEROFF
    fi
}

# checks_done: the final taint; the watchdog leaves.
checks_done() {
    _dbgs_res "# taint: $(dd if=/proc/sys/kernel/tainted 2>/dev/null)"
    if [ -n "${DBGS_WD:-}" ]; then
        echo quit >&5
        wait "$DBGS_WD"
        DBGS_WD=
        exec 5>&- 6>&-
    fi
}

# run_user_check N NAME SCRIPT: a tests/*.sh of the user's as one check, its own
# results indented as a KTAP subtest. With DBGS_CHECK_LIB set (a lab's checks/lib.sh),
# that file is sourced first: functions the lab's checks share.
# The subtest is laid out as KUnit's are (the kernel's kunit_parser reads it): the
# indented version line, then "# Subtest: NAME", then the results. No plan: how many
# results a script gives is known only at its end, and the spec lets a plan be left out
# then (a plan after the results is no KTAP; the parent's result line ends the subtest).
_user() {
    _dbgs_res "  KTAP version 1"
    _dbgs_res "  # Subtest: $DBGS_SUBTEST"
    # In run_check's subshell, not `sh -c`: the token stays a shell variable (see above),
    # and the library's functions are there already: sourcing it anew cost 7 ms under TCG.
    DBGS_INDENT='  '; DBGS_N=0; DBGS_FAILED=0
    [ -z "${DBGS_CHECK_LIB:-}" ] || . "$DBGS_CHECK_LIB"
    . "$DBGS_SCRIPT"
    exit $DBGS_FAILED
}
run_user_check() { # N NAME PATH
    DBGS_SCRIPT=$3
    DBGS_SUBTEST=$2
    export DBGS_SCRIPT DBGS_SUBTEST
    run_check "$1" "$2" _user
}

# insmod_failed NAME: why insmod of module NAME failed (its error in $DBGS_TMP/.err,
# the kernel's own lines about it) as diagnostics, with a Fix line.
insmod_failed() {
    diag "$(cat "$DBGS_TMP/.err")"
    _kl=$(${DBGS_DMESG:-dmesg} | grep -F "] $1: " | tail -n 5)
    [ -n "$_kl" ] && printf '%s\n' "$_kl" | while read -r _l; do diag "kernel: $_l"; done
    case $_kl in
        *"Unknown symbol"*) diag "Fix: a symbol it uses is exported neither by this kernel nor by a module loaded before it: load that module first ([test] modules = [...] in dbgscaffold.toml), or use a kernel that exports it." ;;
        *"invalid for parameter"*|*"Unknown parameter"*) diag "Fix: the parameters ([test] params) must match its module_param()s (modinfo -p shows them)." ;;
        *) diag "Fix: its init function failed: see its messages above (an error code from init, e.g. -EINVAL for a parameter it refuses)." ;;
    esac
    return 1
}

# load_module NAME KO [PARAM...]: insmod; fails (saying why, with a Fix) when the module
# does not load or when the kernel ignored one of its parameters (a typo would go unseen).
load_module() {
    _name=$1; _ko=$2; shift 2
    [ $# -gt 0 ] && _seen=$(${DBGS_DMESG:-dmesg} | wc -l)
    insmod "$_ko" "$@" 2>"$DBGS_TMP/.err" || { insmod_failed "$_name"; return 1; }
    [ $# -gt 0 ] || return 0
    _ign=$(${DBGS_DMESG:-dmesg} | tail -n +$((_seen + 1)) | grep -F "] $_name: unknown parameter")
    [ -n "$_ign" ] || return 0
    printf '%s\n' "$_ign" | while read -r _l; do diag "kernel: $_l"; done
    diag "Fix: it has no such parameter: correct [test] params in dbgscaffold.toml (modinfo -p lists its parameters)."
    return 1
}

# ---------------------------------------------------------------- kmemleak
# A debug kernel's kmemleak finds memory nobody points to any more. A module's leak
# shows after rmmod (its static pointers are gone with it), when its code is gone too:
# kmemleak's backtrace then shows bare addresses, so where each module's sections lay
# is noted at every insmod, for the host to decode (runner.leaks).

: "${DBGS_LEAK_AGE_CS:=520}"  # kmemleak reports an object at least 5 s old (MSECS_MIN_AGE)

# dbgs_sections NAME: "NAME SECTION:ADDRESS" for each code section of the loaded
# module, appended to $DBGS_TMP/.dbgs-sections (nothing on a kernel without kmemleak).
# One grep: a section file answers only a read at offset 0 (ash's read goes bytewise).
dbgs_sections() {
    [ -e "$DBGS_DEBUGFS/kmemleak" ] || return 0
    grep -H . "$DBGS_SYSMODULE/$1/sections/".*text* 2>/dev/null | while IFS= read -r _l; do
        echo "$1 ${_l##*/}"
    done >> "$DBGS_TMP/.dbgs-sections"
    return 0
}

# insmod, for every caller (the checks, a lab's, your tests/*.sh): the module loads and
# where it lies is noted. The kernel names foo-bar.ko "foo_bar".
insmod() {
    command ${DBGS_INSMOD:-insmod} "$@" || return  # overridable to test on a host
    _m=${1##*/}; _m=${_m%.ko}
    case $_m in *-*) _m=$(echo "$_m" | tr - _) ;; esac
    dbgs_sections "$_m"
}

# dbgs_leaks_reset: a payload starts from no leak (the VM may have run another
# project before): what kmemleak already reported is cleared, no section is noted.
dbgs_leaks_reset() {
    rm -f "$DBGS_TMP/.dbgs-sections"
    [ -e "$DBGS_DEBUGFS/kmemleak" ] && echo clear > "$DBGS_DEBUGFS/kmemleak" 2>/dev/null
    return 0
}

# dbgs_module_leaks FILE: the first $DBGS_LEAKS_SHOWN objects of kmemleak's FILE whose
# backtrace has a module frame (bare, " 0xffffffffa...", once the module is gone; or
# "... [name]"; 6.1 puts "[<...>]" before each frame, 6.12 not) as "kmemleak: "
# diagnostics (the serial port is slow, ash is slower: a leak per write can be
# thousands); fails when there is none. Only the modules under test are ever loaded
# here, so a module frame is theirs.
: "${DBGS_LEAKS_SHOWN:=20}"
dbgs_module_leaks() {
    _n=0; _block=; _ours=; _full=
    _flush() {
        [ -n "$_ours" ] || return 0
        _n=$((_n + 1))
        printf '%s\n' "$_block" | while IFS= read -r _l; do diag "kmemleak: $_l"; done
    }
    while IFS= read -r _l; do
        case $_l in
            "unreferenced object"*)
                _flush; _ours=; _bt=
                [ $_n -ge "$DBGS_LEAKS_SHOWN" ] && { _full=1; break; }
                _block=$_l ;;
            *) _block="$_block
$_l"
               case $_l in *backtrace*) _bt=1 ;; esac
               # a frame, not the hex dump's text column
               [ -n "$_bt" ] && case $_l in *" 0xffffffff"[a-f]*|*" ["*"]") _ours=1 ;; esac ;;
        esac
    done < "$1"
    [ -n "$_full" ] || _flush
    if [ -n "$_full" ]; then
        _all=$(grep -c '^unreferenced object' "$1")
        diag "kmemleak-more: up to $((_all - _n)) more objects (the kernel's own among them), not shown"
    fi
    [ $_n -gt 0 ]
}

# dbgs_no_leaks: after the last rmmod, the objects kmemleak finds unreferenced whose
# backtrace passes through module code (only the modules under test are ever loaded
# here: the kernel's own leaks have none) as "kmemleak: " diagnostics, and the noted
# sections as "section: " ones; fails if there is one, skips without kmemleak.
dbgs_no_leaks() {
    _k=$DBGS_DEBUGFS/kmemleak
    if [ ! -e "$_k" ]; then
        diag "this kernel has no kmemleak (a debug kernel has: dbgscaffold kernel build)"
        return 4
    fi
    # The first scan notes each object's checksum (an object changed since the previous
    # scan is not reported); the second reports what is old enough and unreferenced.
    # The last rmmod was just before this check: what it left is old enough once
    # DBGS_LEAK_AGE_CS have passed since the check began.
    _now_cs; _t0=$_cs
    if ! { echo scan > "$_k"; } 2> "$DBGS_TMP/.err"; then
        diag "kmemleak is off ($(cat "$DBGS_TMP/.err")): it disables itself on an internal error, see the kernel log"
        return 4
    fi
    _now_cs; _w=$((DBGS_LEAK_AGE_CS - (_cs - _t0)))
    [ $_w -gt 0 ] && sleep "$((_w / 100)).$((_w % 100 / 10))$((_w % 10))"
    echo scan > "$_k"
    dbgs_module_leaks "$_k" || return 0
    [ -f "$DBGS_TMP/.dbgs-sections" ] && sort -u "$DBGS_TMP/.dbgs-sections" | while read -r _l; do diag "section: $_l"; done
    return 1
}

# ---------------------------------------------------------------- discovery
# What the modules created, found by listing before the first insmod and after the
# last: debugfs (not the tracefs automount under it), /proc outside the processes
# and sysctls, and each module's /sys/module/NAME/parameters. The lists live in
# $DBGS_TMP (each check is a subshell; files outlive it).

: "${DBGS_DEBUGFS:=/sys/kernel/debug}"  # overridable, like DBGS_KMSG, to test on a host
: "${DBGS_PROC:=/proc}"
: "${DBGS_SYSMODULE:=/sys/module}"

_dbgs_listing() {
    find "$DBGS_DEBUGFS" -path "$DBGS_DEBUGFS/tracing" -prune -o -print 2>/dev/null
    find "$DBGS_PROC" -maxdepth 2 \( -path "$DBGS_PROC/[0-9]*" -o -path "$DBGS_PROC/sys" -o -path "$DBGS_PROC/self" \
        -o -path "$DBGS_PROC/thread-self" \) -prune -o -print 2>/dev/null
}

discover_before() { _dbgs_listing | sort > "$DBGS_TMP/.dbgs-before"; }

# discover_created MODULE...: the new paths, sorted, in $DBGS_TMP/.dbgs-created.
# A line listed twice (before twice, after once) is old: uniq -u keeps the new ones.
discover_created() {
    {
        _dbgs_listing | sort | sort -m - "$DBGS_TMP/.dbgs-before" "$DBGS_TMP/.dbgs-before" | uniq -u
        for _m in "$@"; do
            [ -d "$DBGS_SYSMODULE/$_m/parameters" ] && find "$DBGS_SYSMODULE/$_m/parameters" -type f | sort
        done
    } > "$DBGS_TMP/.dbgs-created"
}

# discover_modes: "MODE PATH" for each created path (stat's %a, one stat for all of
# them: each exec costs milliseconds under TCG), in $DBGS_TMP/.dbgs-modes
discover_modes() {
    : > "$DBGS_TMP/.dbgs-modes"
    [ -s "$DBGS_TMP/.dbgs-created" ] || return 0
    head -n "${DBGS_DISCOVER_MAX:-200}" "$DBGS_TMP/.dbgs-created" | xargs stat -c '%a %n' > "$DBGS_TMP/.dbgs-modes" 2>/dev/null
}

# _value FILE: its content when it is one number or Y/N (what a read-back can
# compare), else empty; in $_v. At most 64 bytes are read.
_value() {
    _v=$(timeout 5 dd if="$1" bs=64 count=1 2>/dev/null)
    case $_v in
        Y|N) ;;
        0x*) case ${_v#0x} in ''|*[!0-9a-fA-F]*) _v= ;; esac ;;
        -*|+*) case ${_v#?} in ''|*[!0-9]*) _v= ;; esac ;;
        *) case $_v in ''|*[!0-9]*) _v= ;; esac ;;
    esac
}

# ---------------------------------------------------------------- --stress
# Readers and writers run as background loops until a deadline; a write the
# kernel rejects is its right, a read that fails is a bug (so is a crash or a
# taint, which run_check reports).

_now_cs() { # uptime in centiseconds, in $_cs, without a fork
    read -r _u _ < /proc/uptime
    _cs=$((${_u%.*} * 100 + 1${_u#*.} - 100))
}

stress_clock() { # the stress phase starts now (a file: each check is a subshell)
    _now_cs
    echo $_cs > "$DBGS_TMP/.stress_t0"
}

stress_start() { # BUDGET_CS MIN_CS: the concurrent phase runs until BUDGET_CS after
    # stress_clock, but at least MIN_CS, and ends a second before the per-check limit.
    _now_cs
    _t0=$_cs
    [ -f "$DBGS_TMP/.stress_t0" ] && read -r _t0 < "$DBGS_TMP/.stress_t0"
    _until=$((_t0 + $1))
    [ $_until -lt $((_cs + $2)) ] && _until=$((_cs + $2))
    if [ -n "${DBGS_CHECK_TIMEOUT:-}" ] && [ $_until -gt $((_cs + DBGS_CHECK_TIMEOUT * 100 - 100)) ]; then
        _until=$((_cs + DBGS_CHECK_TIMEOUT * 100 - 100))
    fi
    _start=$_cs; _bg=; _k=0
    rm -rf "$DBGS_TMP/.stress"
}

stress_bg() { # reader FILE | writer FILE STRICT FORMAT...: one loop, in the background
    _k=$((_k + 1))
    (
        DBGS_TMP=$DBGS_TMP/.stress/$_k  # put/same use fixed names under it
        mkdir -p "$DBGS_TMP"
        "_stress_$@"
    ) &
    _bg="$_bg $!"
}

_stress_reader() { # FILE
    _n=0
    while _now_cs; [ $_cs -lt $_until ]; do
        if ! cat "$1" > /dev/null 2> "$DBGS_TMP/.err"; then
            diag "reading $1 failed after $_n reads: $(cat "$DBGS_TMP/.err")"
            exit 1
        fi
        _n=$((_n + 1))
    done
    echo $_n > "$DBGS_TMP/reads"
}

_stress_writer() { # FILE STRICT FORMAT...: printf is a builtin: one write(2), no fork
    _f=$1; _strict=$2; shift 2; _n=0
    while _now_cs; [ $_cs -lt $_until ]; do
        for _w in "$@"; do
            if ! printf "$_w" 2>/dev/null > "$_f" && [ "$_strict" = 1 ]; then
                printf "$_w" > "$DBGS_TMP/.put"
                diag "writing $(_shown "$DBGS_TMP/.put") to $_f failed after $_n writes"
                exit 1
            fi
            _n=$((_n + 1))
        done
    done
    echo $_n > "$DBGS_TMP/writes"
}

stress_wait() { # every loop must end well; a summary diagnostic
    _rc=0
    for _p in $_bg; do wait $_p || _rc=1; done
    _r=0; _w=0
    for _c in "$DBGS_TMP"/.stress/*/reads; do [ -f "$_c" ] && read -r _n < "$_c" && _r=$((_r + _n)); done
    for _c in "$DBGS_TMP"/.stress/*/writes; do [ -f "$_c" ] && read -r _n < "$_c" && _w=$((_w + _n)); done
    _now_cs
    _cs=$((_cs - _start))
    diag "$_r reads, $_w writes by $_k concurrent loops in $((_cs / 100)).$((_cs % 100 / 10)) s"
    return $_rc
}

stress_random() { # FILE SIZE...: one write(2) of SIZE random bytes each (0: open with O_TRUNC)
    _f=$1; shift
    for _s in "$@"; do
        if [ "$_s" -eq 0 ]; then
            : 2>/dev/null > "$_f"
        else
            head -c "$_s" /dev/urandom > "$DBGS_TMP/.rnd"
            dd if="$DBGS_TMP/.rnd" of="$_f" bs=65536 conv=notrunc 2>/dev/null
        fi
    done
    return 0
}

still_reads() { # FILE...: each still opens and reads to the end
    _rc=0
    for _f in "$@"; do
        cat "$_f" > /dev/null 2> "$DBGS_TMP/.err" || { diag "reading $_f failed: $(cat "$DBGS_TMP/.err")"; _rc=1; }
    done
    return $_rc
}
