# task: 1
# title: trace.sh function 5: the function tracer sees 5 calls of mytrace_step from run_write

trace function 5
n=$(count ": mytrace_step\( \[mytrace\]\)* <-run_write")
if [ "$n" = 5 ]; then ok "5 calls of mytrace_step from run_write traced"; else not_ok "5 calls of mytrace_step from run_write traced" "$n in the trace of 'trace.sh function 5'"; shown "mytrace_step"; fi
# set_ftrace_filter takes only these names: an inlined function has no entry of its own.
if grep -q "^mytrace_step \[mytrace\]$" $T/available_filter_functions; then
    ok "mytrace_step is in available_filter_functions"
else
    not_ok "mytrace_step is in available_filter_functions" "no traceable function of that name: an inlined function has no entry of its own (noinline), a cloned one another name (__noclone)"
    grep mytrace $T/available_filter_functions | while IFS= read -r _l; do diag "available: $_l"; done
fi
