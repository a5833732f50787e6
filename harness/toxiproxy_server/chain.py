"""A proxy's toxics: the configured chain per direction, their JSON form and the API's checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.toxiproxy_server import jsonbody
from harness.toxiproxy_server.errors import (
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    ApiError,
    bad_body,
)
from harness.toxiproxy_server.toxics import KINDS, ToxicKind

DIRECTIONS = ("upstream", "downstream")

_TOXIC_FIELDS: dict[str, jsonbody.Kind] = {
    "name": "string",
    "type": "string",
    "stream": "string",
    "toxicity": "float",
    "attributes": "any",
}
_UPDATE_FIELDS: dict[str, jsonbody.Kind] = {"attributes": "any", "toxicity": "float"}


@dataclass(eq=False)
class Toxic:
    """One configured toxic; links hold a reference and re-read it on every (re)start."""

    name: str
    kind: ToxicKind
    stream: str
    direction: str
    toxicity: float
    attributes: dict[str, Any]
    # per-frame kinds only (an extension): frames seen, matched and acted on, over every link of
    # the proxy (live or closed) since the toxic was created
    stats: dict[str, int] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.kind.per_frame and self.stats is None:
            self.stats = {"frames": 0, "matched": 0, "acted": 0}

    def to_json(self) -> dict[str, Any]:
        toxicity: float | int = self.toxicity
        if float(toxicity).is_integer() and abs(toxicity) < 1e15:
            toxicity = int(toxicity)
        body = {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.kind.name,
            "stream": self.stream,
            "toxicity": toxicity,
        }
        if self.stats is not None:
            body["stats"] = dict(self.stats)
        return body


def _attributes(
    kind: ToxicKind, value: Any, base: dict[str, Any], direction: str
) -> dict[str, Any]:
    """Merge a request's `attributes` into `base`; unknown keys are ignored, as in Go."""
    if value is not None and not isinstance(value, dict):
        raise bad_body(
            f"json: cannot unmarshal {jsonbody.json_type(value)} into field attributes "
            f"of type {kind.name} attributes object"
        )
    merged = dict(base)
    merged.update(jsonbody.fields(value, kind.schema, f"{kind.name}.attributes"))
    problem = kind.check(merged, direction)
    if problem is not None:
        raise bad_body(f"invalid {kind.name} attributes: {problem}")
    return merged


class ToxicChains:
    """Upstream and downstream chains, each in creation order; names unique across both."""

    def __init__(self) -> None:
        self.chains: dict[str, list[Toxic]] = {d: [] for d in DIRECTIONS}

    def __iter__(self):
        for direction in DIRECTIONS:
            yield from self.chains[direction]

    def to_json(self) -> list[dict[str, Any]]:
        """Upstream toxics first, then downstream, as the real server lists them."""
        return [toxic.to_json() for toxic in self]

    def find(self, name: str) -> Toxic | None:
        return next((toxic for toxic in self if toxic.name == name), None)

    def get(self, name: str) -> Toxic:
        toxic = self.find(name)
        if toxic is None:
            raise ApiError(404, TOXIC_NOT_FOUND)
        return toxic

    def parse_new(self, body: Any) -> Toxic:
        """A toxic from a create request, checked in the real server's order."""
        fields = jsonbody.fields(body, _TOXIC_FIELDS, "ToxicWrapper")
        stream = fields.get("stream", "downstream")
        direction = stream.lower()
        if direction not in DIRECTIONS:
            raise ApiError(400, INVALID_STREAM)
        kind = KINDS.get(fields.get("type", ""))
        if kind is None:
            raise ApiError(400, INVALID_TOXIC_TYPE)
        name = fields.get("name") or f"{kind.name}_{stream}"
        if self.find(name) is not None:
            raise ApiError(409, TOXIC_EXISTS)
        attributes = _attributes(kind, fields.get("attributes"), kind.defaults, direction)
        return Toxic(name, kind, stream, direction, fields.get("toxicity", 1.0), attributes)

    def parse_update(self, toxic: Toxic, body: Any) -> tuple[dict[str, Any], float]:
        """New attributes (merged into the current ones) and toxicity; omitted ones are kept."""
        fields = jsonbody.fields(body, _UPDATE_FIELDS, "ToxicWrapper")
        attributes = _attributes(
            toxic.kind, fields.get("attributes"), toxic.attributes, toxic.direction
        )
        return attributes, fields.get("toxicity", toxic.toxicity)

    def add(self, toxic: Toxic) -> None:
        self.chains[toxic.direction].append(toxic)

    def remove(self, toxic: Toxic) -> None:
        self.chains[toxic.direction].remove(toxic)
