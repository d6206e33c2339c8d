# level starts at the debug_value parameter and takes a new value.
expect_read /sys/kernel/debug/knobs/level '7\n'
echo 9 > /sys/kernel/debug/knobs/level && expect_read /sys/kernel/debug/knobs/level '9\n'
expect_read /proc/knobs 'knobs ok\n'
