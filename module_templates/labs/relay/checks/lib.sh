# The relay lab's check library: sourced before each check (docs/labs-format.md).

# records FROM TO: the bytes of records FROM..TO ("record 00000001\n" ...)
records() { i=$1; while [ "$i" -le "$2" ]; do printf 'record %08u\n' "$i"; i=$((i + 1)); done; }
# reads_records FROM TO: reading $ROOT/cpu0 now gives exactly records FROM..TO
reads_records() {
    records "$1" "$2" > /tmp/.want
    if ! cat "$ROOT/cpu0" > /tmp/.got 2> /tmp/.err; then
        diag "reading $ROOT/cpu0 failed: $(cat /tmp/.err)"
        return 1
    fi
    cmp -s /tmp/.want /tmp/.got && return 0
    n=$(wc -c < /tmp/.got)
    diag "$ROOT/cpu0 read $n bytes; expected records $1..$2 ($(wc -c < /tmp/.want) bytes)"
    head -c 32 /tmp/.got > /tmp/.part && diag "it starts: $(_shown /tmp/.part)"
    tail -c 32 /tmp/.got > /tmp/.part && diag "it ends:   $(_shown /tmp/.part)"
    return 1
}
# emit N: write N to $ROOT/emit (the module writes N records)
emit() {
    put_ok "$ROOT/emit" "$1\n" && return 0
    grep -q "No such device" $DBGS_TMP/.err && diag "ENODEV: no channel (task 1: relay_open)"
    return 1
}
# reload: a fresh module (records numbered from 1 again, empty buffer)
reload() {
    rmmod "$MODULE" 2> /tmp/.err || { diag "rmmod: $(cat /tmp/.err)"; return 1; }
    insmod "$KO" 2> /tmp/.err || { diag "insmod: $(cat /tmp/.err)"; return 1; }
}
