# task: 1
# title: the directory /sys/kernel/debug/mydebug exists after insmod
if [ -d "$ROOT" ]; then ok "$ROOT is a directory"; else not_ok "$ROOT is a directory" "no $ROOT: create it with debugfs_create_dir(\"mydebug\", NULL)"; fi
