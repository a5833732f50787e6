"""Request-body decoding with Go `encoding/json` rules, so clients get the real server's 400s.

Go reads only the first JSON value, ignores unknown fields, matches field names case-insensitively,
leaves a field untouched on `null`, and rejects wrong types and non-integer numbers for int fields.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from harness.toxiproxy_server.errors import bad_body

Kind = Literal["string", "bool", "int", "float", "object", "any"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_FLOAT32_MAX = 3.4028234663852886e38
_WHITESPACE = " \t\r\n"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode(raw: bytes) -> Any:
    """The first JSON value of a body; an empty body is Go's `EOF`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_body(f"invalid UTF-8 at byte {exc.start}") from None
    text = text.lstrip(_WHITESPACE)
    if not text:
        raise bad_body("EOF")
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise bad_body(f"invalid JSON: {exc.msg} (offset {exc.pos})") from None
    except ValueError as exc:
        raise bad_body(str(exc)) from None
    except RecursionError:
        raise bad_body("exceeded max depth") from None
    return value


def json_type(value: Any) -> str:
    """Go's name for a JSON value's type in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _check(value: Any, kind: Kind, where: str) -> Any:
    if kind == "any":
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        raise bad_body(f"json: cannot unmarshal number {value} into field {where} of type int64")
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and (math.isinf(value) or abs(value) > _FLOAT32_MAX):
            raise bad_body(
                f"json: cannot unmarshal number {value} into field {where} of type float32"
            )
        return float(value)
    if kind == "object" and isinstance(value, dict):
        return value
    go_kind = {"string": "string", "bool": "bool", "int": "int64", "float": "float32"}.get(
        kind, "object"
    )
    raise bad_body(
        f"json: cannot unmarshal {json_type(value)} into field {where} of type {go_kind}"
    )


def fields(value: Any, schema: dict[str, Kind], where: str) -> dict[str, Any]:
    """The schema's fields present (and non-null) in a JSON object, type-checked.

    A top-level `null` decodes as an empty object, as in Go.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_body(f"json: cannot unmarshal {json_type(value)} into Go value of type {where}")
    folded = {name.lower(): name for name in schema}
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in schema else folded.get(key.lower())
        if name is None or item is None:
            continue
        out[name] = _check(item, schema[name], f"{where}.{name}")
    return out
