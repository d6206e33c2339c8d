"""dbgscaffold: write, check and test Linux kernel modules that expose debugfs trees."""

__version__ = "0.1.0"
