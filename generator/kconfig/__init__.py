"""check-config: kernel configs, profiles, kconfiglib analysis, fixes, runtime readiness."""
