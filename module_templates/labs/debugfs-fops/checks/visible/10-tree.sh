# task: 1
# title: fopslab/ holds buffer (0644) and stats (0444)
if [ -d "$ROOT" ]; then ok "$ROOT is a directory"; else not_ok "$ROOT is a directory" "debugfs_create_dir(\"fopslab\", NULL)"; fi
if mode_is "$ROOT/buffer" 644; then ok "buffer has mode 0644"; else not_ok "buffer has mode 0644"; fi
if mode_is "$ROOT/stats" 444; then ok "stats has mode 0444"; else not_ok "stats has mode 0444"; fi
