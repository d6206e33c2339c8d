# task: 1
# title: cpu0 has the mode relay asks for; cleanup over reloads

if mode_is "$ROOT/cpu0" 400; then ok "cpu0 is 0400 (the mode relay passes to create_buf_file)"; else not_ok "cpu0 is 0400 (the mode relay passes to create_buf_file)"; fi
i=0
while [ $i -lt 3 ]; do
    i=$((i + 1))
    if ! rmmod "$MODULE" 2> /tmp/.err; then not_ok "reload $i" "rmmod: $(cat /tmp/.err)"; break; fi
    if [ -e "$ROOT" ]; then not_ok "reload $i" "$ROOT is still there after rmmod"; insmod "$KO" 2>/dev/null; break; fi
    if ! insmod "$KO" 2> /tmp/.err; then not_ok "reload $i" "insmod: $(cat /tmp/.err)"; break; fi
    if [ ! -f "$ROOT/cpu0" ]; then not_ok "reload $i" "no $ROOT/cpu0 after insmod"; break; fi
    ok "reload $i: cpu0 gone with rmmod, back with insmod"
done
