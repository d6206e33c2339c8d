"""C literals and comment text for the module templates, as Jinja filters.

The templates hold all the C; these filters only turn spec values into
literals that compile without warnings and pass checkpatch --strict:
strings are escaped with fixed-width octal (never greedy hex), '??' cannot
form a trigraph, and long strings are split only after a newline escape
(checkpatch accepts a split string only there).
"""

from __future__ import annotations

import re
import textwrap

INT_MAX = 2**31 - 1
_SIMPLE_ESCAPES = {
    ord("\n"): "\\n",
    ord("\t"): "\\t",
    ord("\r"): "\\r",
    ord("\\"): "\\\\",
    ord('"'): '\\"',
}


_SPLITTABLE = ("\\n", "\\t", "\\r")  # escapes checkpatch lets a split string end with
STRING_WIDTH = 88  # characters of one literal line, leaving room for indent and ';'


def _escape(byte: int, previous: int) -> str:
    if byte in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[byte]
    if byte == ord("?") and previous == ord("?"):
        return "\\?"  # '??x' could read as a trigraph
    if 0x20 <= byte < 0x7F:
        return chr(byte)
    return f"\\{byte:03o}"


def c_string_chunks(data: bytes | str) -> list[str]:
    """Quoted C string literals whose concatenation is exactly `data`.

    A new chunk starts after every newline, so multi-line text reads as
    lines, and after any escape once a chunk grows long: checkpatch accepts
    a string split only after an escape sequence.
    """
    if isinstance(data, str):
        data = data.encode()
    chunks: list[str] = []
    current = ""
    previous = -1
    for i, byte in enumerate(data):
        piece = _escape(byte, previous)
        if byte == ord(" ") and data[i + 1 : i + 2] == b"\n":
            piece = "\\040"  # checkpatch: no whitespace before a quoted newline
        current += piece
        previous = byte
        if byte == ord("\n") or (piece in _SPLITTABLE or piece[1:].isdigit()) and len(current) >= STRING_WIDTH - 4:
            chunks.append(f'"{current}"')
            current = ""
    if current or not chunks:
        chunks.append(f'"{current}"')
    return chunks


def c_escaped_length(text: str) -> int:
    """Columns `text` takes as one C string literal, quotes included."""
    return 2 + sum(len(chunk) - 2 for chunk in c_string_chunks(text))


def c_initializer(data: bytes | str, indent: str = "\t") -> str:
    """What follows `static char name[] =`: the literal on lines of its own.

    A line holding only a string literal is exempt from checkpatch's length
    rule, but not one ending in ';' -- so a literal too long for that is
    wrapped in braces, which C allows around a string initializer.
    """
    chunks = c_string_chunks(data)
    body = ("\n" + indent).join(chunks)
    if _columns(indent + chunks[-1] + ";") <= LINE_WIDTH:
        return f"\n{indent}{body};"
    return f" {{\n{indent}{body}\n}};"


def c_string(data: bytes | str, indent: str = "\t") -> str:
    """One C string literal expression; continuation lines get `indent`."""
    return ("\n" + indent).join(c_string_chunks(data))


def c_int(value: int | bool, c_type: str = "int", hexadecimal: bool = False) -> str:
    """An integer literal of the right width for `c_type`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = f"0x{value:x}" if hexadecimal else str(value)
    if value > INT_MAX:
        text += "ULL" if c_type in ("u64",) else "U"
    return text


def comment_text(text: str, width: int = 76, prefix: str = " * ") -> str:
    """Text made safe for a /* */ block and wrapped to the kernel's line length."""
    text = text.replace("*/", "* /")
    lines = textwrap.wrap(text, width=width) or [""]
    return "\n".join((prefix + line).rstrip() for line in lines)


LINE_WIDTH = 100  # checkpatch's max_line_length


def _columns(text: str) -> int:
    """Display width of a line start, with the kernel's 8-column tabs."""
    col = 0
    for ch in text:
        col = (col // 8 + 1) * 8 if ch == "\t" else col + 1
    return col


def c_call(args: list[str], head: str, indent: int = 1, end: str = ";") -> str:
    """`head(arg, arg, ...)end`, wrapped at 100 columns with continuation
    lines aligned to the open parenthesis, as checkpatch --strict wants.

    An argument too long for any line gets a line of its own; a line holding
    only a string literal is exempt from checkpatch's length rule.
    """
    first = "\t" * indent + head + "("
    col = _columns(first)
    align = "\t" * (col // 8) + " " * (col % 8)
    lines = [first]
    for i, arg in enumerate(args):
        piece = arg + (", " if i < len(args) - 1 else ")" + end)
        current = lines[-1]
        fits = _columns(current + piece.rstrip()) <= LINE_WIDTH
        if not fits and current not in (first, align):
            lines[-1] = current.rstrip()
            lines.append(align)
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def c_assign(pair: tuple[str, str], indent: int = 1) -> str:
    """`left = right;` (or the call statement `right;` when left is empty), the right-hand
    side on a continuation line, or a call's arguments wrapped, when the whole would
    pass 100 columns."""
    left, right = pair
    tabs = "\t" * indent
    line = f"{tabs}{left} = {right};" if left else f"{tabs}{right};"
    if _columns(line) <= LINE_WIDTH:
        return line
    if not left:
        head, _, args = right.partition("(")
        if not re.fullmatch(r"[A-Za-z_]\w*", head) or not args.endswith(")"):
            raise ValueError(f"not a call statement: {right!r}")  # a kind's statements are plain calls
        return c_call(_top_level_args(args[:-1]), head, indent)
    return f"{tabs}{left} =\n{tabs}\t{right};"


def _top_level_args(text: str) -> list[str]:
    """A call's arguments: `text` split at the commas outside parentheses."""
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    return [*args, text[start:].strip()]
