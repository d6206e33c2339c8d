# task: 1
# title: rmmod removes the whole tree (debugfs_remove_recursive)
if [ -d "$ROOT/" ]; then ok "$ROOT exists before rmmod"; else not_ok "$ROOT exists before rmmod"; fi
rmmod "$MODULE" 2>/tmp/.err || diag "rmmod: $(cat /tmp/.err)"
if [ ! -e "$ROOT" ]; then ok "$ROOT is gone after rmmod"; else not_ok "$ROOT is gone after rmmod" "debugfs_remove_recursive(root) in the exit function"; fi
insmod "$KO" 2>/tmp/.err || diag "insmod: $(cat /tmp/.err)"
if [ -d "$ROOT" ]; then ok "$ROOT is back after a second insmod"; else not_ok "$ROOT is back after a second insmod"; fi
