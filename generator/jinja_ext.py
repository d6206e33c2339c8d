"""The Jinja extension the module templates are written for: c_literals' filters, the
whitespace rules and the bytecode cache.

Apart from c_literals so that what needs only the literals (spec checking, on every `test`)
does not import jinja2.
"""

from __future__ import annotations

from jinja2 import Environment, FileSystemBytecodeCache
from jinja2.ext import Extension

from .c_literals import c_assign, c_call, c_initializer, c_int, c_string, comment_text
from .paths import ForeignCache, cache_dir, trusted


class CLiteralsExtension(Extension):
    """Registers the filters and the whitespace rules the templates are written for."""

    def __init__(self, environment: Environment):
        super().__init__(environment)
        # Block tags on their own line leave no blank line behind.
        environment.trim_blocks = True
        environment.lstrip_blocks = True
        # Compiling the templates is most of `new`'s time: keep the bytecode.
        # (bytecode is code: only from a directory no other user can write into)
        try:
            cache = cache_dir() / "jinja"
            cache.mkdir(parents=True, exist_ok=True)
            if trusted(cache):
                environment.bytecode_cache = FileSystemBytecodeCache(str(cache))
        except (OSError, ForeignCache):
            pass  # an unwritable (or someone else's) cache only costs time
        environment.filters.update(
            c_string=c_string,
            c_initializer=c_initializer,
            c_int=c_int,
            comment_text=comment_text,
            c_call=c_call,
            c_assign=c_assign,
        )
