# The warm-up: sent to a guest restored from its snapshot while kbuild still compiles,
# its results unread. TCG's cache of translated code is not in the snapshot, so the
# first payload after a restore would pay ~0.14 s to translate what every payload runs
# (the agent's unpacking, a subshell, this library); this pays it while nothing waits.
# Measured: running more here (a check, its watchdog, the applets) saves no more than
# it costs.
. /checks/ktap.sh
