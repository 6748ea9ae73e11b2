"""BOR/EOR ODB dumps: JSON (current loggers) or XML (older ones), both read as a nested dict.

XML `<dir name=..>` becomes a dict, `<key>` a value converted by its MIDAS type and
`<keyarray>` a list, so `odb["Configurations"]["Exposure"]` is the same path for both.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape, quoteattr

_INT_TYPES = {"BYTE", "SBYTE", "WORD", "SHORT", "DWORD", "INT", "UINT", "INT8", "UINT8"}
_INT_TYPES |= {"INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "QWORD", "BITFIELD"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}


class OdbError(ValueError):
    """The ODB text does not parse; the caller adds file/offset context."""


def parse_odb(payload: bytes | memoryview) -> dict[str, Any]:
    """Decode a BOR/EOR payload, with or without trailing NUL bytes."""
    text = bytes(payload).rstrip(b"\0").lstrip()
    if not text:
        raise OdbError("empty ODB dump")
    try:
        if text[:1] == b"{":
            value = json.loads(text.decode("utf-8", errors="replace"))
            if not isinstance(value, dict):
                raise OdbError("JSON ODB dump is not an object")
            return value
        if text[:1] == b"<":
            return _xml_to_dict(ET.fromstring(text))
    except (ValueError, ET.ParseError) as error:
        raise OdbError(f"ODB dump does not parse: {error}") from None
    raise OdbError(f"ODB dump is neither JSON nor XML (starts with {text[:8]!r})")


def camera_shapes(odb: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """Camera index -> (height, width) from `/Equipment/Camera<i>/Settings/Height|Width`
    (`Camera` alone is camera 0), as the DAQ (and our simulator) record the sensor ROI."""
    shapes = {}
    equipment = odb.get("Equipment")
    for name, node in equipment.items() if isinstance(equipment, dict) else ():
        match = re.fullmatch(r"Camera(\d*)", name)
        settings = node.get("Settings") if match and isinstance(node, dict) else None
        if isinstance(settings, dict):
            height, width = settings.get("Height"), settings.get("Width")
            if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
                shapes[int(match.group(1) or 0)] = (height, width)
    return shapes


def _convert(kind: str, text: str | None) -> Any:
    text = text or ""
    if kind in _INT_TYPES:
        return int(text, 0) if text.strip() else 0
    if kind in _FLOAT_TYPES:
        return float(text) if text.strip() else 0.0
    if kind == "BOOL":
        return text.strip().lower() in ("y", "1", "true")
    return text


def _xml_to_dict(element: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        name = child.get("name")
        if name is None:
            continue
        kind = (child.get("type") or "").upper()
        if child.tag == "dir":
            out[name] = _xml_to_dict(child)
        elif child.tag == "key":
            out[name] = _convert(kind, child.text)
        elif child.tag == "keyarray":
            out[name] = [_convert(kind, v.text) for v in child if v.tag == "value"]
    return out


def dump_odb(odb: dict[str, Any], fmt: str = "json") -> bytes:
    """Render an ODB dict as MIDAS writes it into BOR/EOR: text followed by one NUL."""
    if fmt == "json":
        return json.dumps(odb, indent=1).encode("utf-8") + b"\0"
    if fmt == "xml":
        lines = ['<?xml version="1.0" encoding="ISO-8859-1"?>', '<odb root="/">']
        _dict_to_xml(odb, lines, 1)
        lines.append("</odb>")
        return "\n".join(lines).encode("iso-8859-1", errors="replace") + b"\n\0"
    raise ValueError(f"ODB format must be 'json' or 'xml', not {fmt!r}")


def _xml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "DOUBLE"
    return "STRING"


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, float):
        return repr(value)
    return escape(str(value))


def _dict_to_xml(odb: dict[str, Any], lines: list[str], depth: int) -> None:
    pad = " " * depth
    for name, value in odb.items():
        attr = quoteattr(str(name))
        if isinstance(value, dict):
            lines.append(f"{pad}<dir name={attr}>")
            _dict_to_xml(value, lines, depth + 1)
            lines.append(f"{pad}</dir>")
        elif isinstance(value, list | tuple):
            kind = _xml_type(value[0]) if value else "INT64"
            lines.append(f'{pad}<keyarray name={attr} type="{kind}" num_values="{len(value)}">')
            for i, item in enumerate(value):
                lines.append(f'{pad} <value index="{i}">{_xml_value(item)}</value>')
            lines.append(f"{pad}</keyarray>")
        else:
            lines.append(
                f'{pad}<key name={attr} type="{_xml_type(value)}">{_xml_value(value)}</key>'
            )
