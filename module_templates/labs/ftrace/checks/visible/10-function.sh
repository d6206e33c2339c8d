# task: 1
# title: function tracer filtered to mytrace_step: 5 calls from run_write

tracing_ready || { not_ok "tracefs ready"; exit 1; }
# Writing a name the kernel cannot trace fails (EINVAL); never enable the function
# tracer without a filter: it would trace every kernel function.
if echo mytrace_step > $T/set_ftrace_filter 2> /tmp/.err; then
    ok "set_ftrace_filter accepts mytrace_step: $(cat $T/set_ftrace_filter)"
else
    not_ok "set_ftrace_filter accepts mytrace_step" "no traceable function of that name: an inlined function has no entry of its own (noinline), a cloned one another name (__noclone)"
    grep mytrace $T/available_filter_functions | while IFS= read -r _l; do diag "available: $_l"; done
    exit 1
fi
echo function > $T/current_tracer
run 5 || not_ok "write 5 to run"
saved
n=$(count ": mytrace_step\( \[mytrace\]\)* <-run_write")
if [ "$n" = 5 ]; then ok "5 calls of mytrace_step from run_write traced"; else not_ok "5 calls of mytrace_step from run_write traced" "$n traced"; shown "mytrace_step"; fi
