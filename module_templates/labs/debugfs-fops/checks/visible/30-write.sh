# task: 3
# title: buffer takes a write, a write at an offset, and refuses 65 bytes (ENOSPC)
if put_ok "$ROOT/buffer" 'hello\n' && same "$ROOT/buffer" 'hello\n'; then ok "a write replaces the content"; else not_ok "a write replaces the content"; fi
printf 'X\n' > /tmp/.x
if dd if=/tmp/.x of="$ROOT/buffer" bs=1 seek=5 conv=notrunc 2>/tmp/.err && same "$ROOT/buffer" 'helloX\n'; then
    ok "two one-byte writes at offset 5 give 'helloX\\n'"
else
    not_ok "two one-byte writes at offset 5 give 'helloX\\n'" "$(cat /tmp/.err)"
fi
head -c 65 /dev/zero | tr '\0' y > /tmp/.big
if dd if=/tmp/.big of="$ROOT/buffer" bs=65 count=1 conv=notrunc 2>/tmp/.err; then
    not_ok "a 65-byte write is refused" "it succeeded: BUF_SIZE is 64"
elif grep -q 'No space left' /tmp/.err; then
    ok "a 65-byte write is refused with ENOSPC"
else
    not_ok "a 65-byte write is refused with ENOSPC" "$(cat /tmp/.err)"
fi
if same "$ROOT/buffer" 'helloX\n'; then ok "the refused write changed nothing"; else not_ok "the refused write changed nothing"; fi
