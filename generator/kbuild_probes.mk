# dbgscaffold: kbuild's compiler probes, answered from a cache (kbuild.py).
#
# kbuild runs ~30 compiler probes (scripts/Makefile.compiler's try-run:
# cc-option, as-instr, ld-option ...) each time it parses its Makefiles, a
# gcc run each: ~0.5 s of a 0.6 s no-op `make M=`. Their answers depend only
# on the probe's command line (in the key below, whole) and the toolchain and
# kernel tree (in the answers file's name). A known answer is taken from
# $(dbgs-probes); an unknown one is probed as kbuild would and, when
# DBGS_PROBES_RECORD names a file, written there for kbuild.py to merge.
#
# A cached answer is one word: KEY=>ANSWER=< (spaces, |, %, $, #, <, > and ^
# escaped); the =< shows the line was written whole.

dbgs-empty :=
dbgs-space := $(dbgs-empty) $(dbgs-empty)
dbgs-hash := \#
dbgs-word = $(subst $(dbgs-space),^s,$(subst |,^b,$(subst $(dbgs-hash),^h,$(subst $$,^d,$(subst <,^l,$(subst >,^g,$(subst %,^p,$(subst ^,^c,$(strip $(1))))))))))
dbgs-text = $(subst ^c,^,$(subst ^p,%,$(subst ^g,>,$(subst ^l,<,$(subst ^d,$$,$(subst ^h,$(dbgs-hash),$(subst ^b,|,$(subst ^s, ,$(1)))))))))
dbgs-key = $(call dbgs-word,$(1))|$(call dbgs-word,$(2))|$(call dbgs-word,$(3))

# kbuild's own try-run (kbuild_probes.py checks the tree's is this one), and whether the
# answer is sure: the probe ran to its end and was not killed by a signal (an OOM kill or a
# ^C would otherwise be remembered as "unsupported")
dbgs-probe = $(shell set -e;		\
	TMP=$(TMPOUT)/tmp;		\
	trap "rm -rf $(TMPOUT)" EXIT;	\
	mkdir -p $(TMPOUT);		\
	s=0; ($(1)) >/dev/null 2>&1 || s=$$?;	\
	if [ $$s -eq 0 ]; then echo "$(2)"; else echo "$(3)"; fi;	\
	[ $$s -ge 128 ] || echo dbgs-sure)

dbgs-record = $(if $(DBGS_PROBES_RECORD),$(file >>$(DBGS_PROBES_RECORD),dbgs-probes += $(1)=>$(call dbgs-word,$(2))=<))$(2)

# $(1): the key; $(2): its cached word, if any; $(3)..$(5): try-run's arguments
dbgs-answer = $(if $(2),$(call dbgs-text,$(patsubst $(1)=>%=<,%,$(2))),$(call dbgs-fresh,$(1),$(call dbgs-probe,$(3),$(4),$(5))))
dbgs-fresh = $(if $(filter dbgs-sure,$(lastword $(2))),$(call dbgs-record,$(1),$(filter-out dbgs-sure,$(2))),$(filter-out dbgs-sure,$(2)))
dbgs-cached = $(call dbgs-answer,$(1),$(firstword $(filter $(1)=>%=<,$(dbgs-probes))),$(2),$(3),$(4))

override try-run = $(call dbgs-cached,$(call dbgs-key,$(1),$(2),$(3)),$(1),$(2),$(3))
