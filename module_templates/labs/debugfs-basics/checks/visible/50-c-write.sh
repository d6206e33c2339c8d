# task: 5
# title: subdir/c takes a replacement and refuses 32 bytes (ENOSPC)
if put_ok "$ROOT/subdir/c" 'new text\n' && same "$ROOT/subdir/c" 'new text\n'; then ok "c takes 'new text\\n' and reads it back"; else not_ok "c takes 'new text\\n' and reads it back"; fi
if put_fails "$ROOT/subdir/c" 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' 'No space left'; then ok "a 32-byte write fails with ENOSPC"; else not_ok "a 32-byte write fails with ENOSPC"; fi
if same "$ROOT/subdir/c" 'new text\n'; then ok "the refused write changed nothing"; else not_ok "the refused write changed nothing"; fi
