# task: 3
# title: writing b: refused on 6.1 whatever the mode, in place from 6.8 (even 0444 for root)
case $SERIES in
    5.* | 6.[0-7]) old=1 ;;
    *) old=0 ;;
esac
{ printf 'Hello world!\n'; head -c 19 /dev/zero; } > /tmp/.b-orig
{ printf 'Bye\no world!\n'; head -c 19 /dev/zero; } > /tmp/.b-bye
if [ $old = 1 ]; then
    if put_fails "$ROOT/b" 'Bye\n'; then ok "a write to b fails on $SERIES (blobs are read-only before 6.8)"; else not_ok "a write to b fails on $SERIES"; fi
    cat "$ROOT/b" > /tmp/.b-got 2>/dev/null
    if cmp -s /tmp/.b-got /tmp/.b-orig; then ok "b is unchanged"; else not_ok "b is unchanged" "read: $(_shown /tmp/.b-got)"; fi
else
    if put_ok "$ROOT/b" 'Bye\n'; then ok "a write to b works on $SERIES"; else not_ok "a write to b works on $SERIES" "mode 0644?"; fi
    cat "$ROOT/b" > /tmp/.b-got 2>/dev/null
    if cmp -s /tmp/.b-got /tmp/.b-bye; then ok "it overwrote the first 4 bytes in place"; else not_ok "it overwrote the first 4 bytes in place" "read: $(_shown /tmp/.b-got)"; fi
    # Only the mode bits stop a write from 6.8: root (CAP_DAC_OVERRIDE) ignores them.
    if chmod 0444 "$ROOT/b" && put_ok "$ROOT/b" 'Hell'; then ok "root writes b even at mode 0444"; else not_ok "root writes b even at mode 0444"; fi
    chmod 0644 "$ROOT/b"
fi
