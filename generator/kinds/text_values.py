"""What the kinds holding bytes share (blob, string, custom): the value key and its README form."""

from __future__ import annotations

from ..spec_model import Parsing, describe


def parse_text(p: Parsing, limit: int | None, too_long_fix: str = "shorten it.", what: str = "") -> bytes | None:
    """The `value` string as bytes ("" when absent); None when it is not a string."""
    raw = p.item.get("value", "")
    if not isinstance(raw, str):
        p.error("value", f"a {p.type.name} value must be a string, not {describe(raw)}", 'write value = "text\\n".')
        return None
    data = raw.encode()
    if limit is not None and len(data) > limit:
        p.error("value", f"{what or p.type.name + ' value'} is {len(data)} bytes; at most {limit}", too_long_fix)
    return data


def shown_text(data: bytes) -> str:
    """Bytes as a README table cell."""
    text = data.decode(errors="replace")
    return "`" + text.replace("\n", "\\n").replace("|", "\\|").replace("`", "'") + "`" if text else "(empty)"
