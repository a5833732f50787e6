"""Incremental NATS protocol framing, so toxics can act on whole frames without corrupting a stream.

The parser only finds frame boundaries (and, for PUB/HPUB/MSG/HMSG, the subject and where the body
starts); toxics decide what to do with them. It never guesses: input it cannot frame switches it to
pass-through for good, so the bytes then go on exactly as they came. A parser that starts in the
middle of a stream (a toxic added to a live connection) cannot know where a frame begins, so it
*seeks*: each chunk is tried as a frame start, its first frame only establishes alignment (it is
never reported as a message), and a chunk that does not parse passes on untouched.

Pure: no I/O, no clock; see tests/toxiproxy/test_nats_frames.py.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import NamedTuple

# Frame operations. OTHER is every op that is passed through whole (INFO, CONNECT, SUB, UNSUB,
# PING, PONG, +OK, -ERR), and the first frame a seeking parser aligns on.
OTHER, PUB, HPUB, MSG, HMSG = range(5)

_OPS: dict[bytes, int] = {
    b"PUB": PUB,
    b"HPUB": HPUB,
    b"MSG": MSG,
    b"HMSG": HMSG,
    **dict.fromkeys((b"INFO", b"CONNECT", b"SUB", b"UNSUB", b"PING", b"PONG", b"+OK", b"-ERR"), 0),
}
_OP_PREFIXES = frozenset(op[:n] for op in _OPS for n in range(1, len(op) + 1))
_LONGEST_OP = max(map(len, _OPS))
# Control-line token counts (op included): PUB subj [reply] n, HPUB subj [reply] hdr total,
# MSG subj sid [reply] n, HMSG subj sid [reply] hdr total.
_TOKENS = {PUB: (3, 4), HPUB: (4, 5), MSG: (4, 5), HMSG: (5, 6)}
_HEADERS = (HPUB, HMSG)

# nats-server caps max_payload at 64 MB; a bigger size is not NATS. A control line without its
# newline this long is not NATS either; both limits bound what a parser buffers.
MAX_PAYLOAD = 64 * 1024 * 1024
MAX_CONTROL_LINE = 1024 * 1024


class Mode(enum.Enum):
    ALIGNED = "aligned"  # at a frame boundary: frames are parsed and reported
    SEEKING = "seeking"  # started mid-stream: the next chunk start is tried as a frame start
    PASSTHROUGH = "passthrough"  # gave up on this stream: bytes go on untouched


class Frame(NamedTuple):
    """A whole message frame, `data[start:end]` of its batch; its body is `data[body:end - 2]`."""

    op: int
    subject: bytes
    start: int
    end: int
    body: int


class Batch(NamedTuple):
    """What one feed yields: whole frames `data[:aligned]`, then `raw` bytes to pass on as is."""

    data: bytes
    aligned: int
    count: int  # frames in data[:aligned]
    msgs: list[Frame]  # the PUB/HPUB/MSG/HMSG frames among them
    raw: bytes


_NOTHING = Batch(b"", 0, 0, [], b"")


def _size(token: bytes) -> int:
    """A size argument, or -1 when it is not a plain decimal within NATS's limit."""
    if not token.isdigit() or len(token) > 12:
        return -1
    value = int(token)
    return value if value <= MAX_PAYLOAD else -1


def _could_start(data: bytes, pos: int) -> bool:
    """Whether an incomplete control line at `pos` can still become a known op."""
    head = data[pos : pos + _LONGEST_OP + 1].upper()
    for i, byte in enumerate(head):
        if byte in b" \t\r":
            return i > 0 and head[:i] in _OPS
    return len(head) <= _LONGEST_OP and head in _OP_PREFIXES


class FrameParser:
    """Splits one direction of a NATS connection into frames, chunk by chunk.

    `aligned=False` for a parser that joins a stream part-way (it seeks a frame start first).
    Incomplete trailing bytes stay buffered until the frame completes (`take_tail` hands them out).
    """

    __slots__ = ("mode", "_parts", "_size", "_need")

    def __init__(self, aligned: bool = True) -> None:
        self.mode = Mode.ALIGNED if aligned else Mode.SEEKING
        self._parts: list[bytes] = []
        self._size = 0
        self._need = 0  # bytes the buffered frame needs in all, when its control line is known

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return self._size

    def feed(self, chunk: bytes | memoryview) -> Batch:
        """The whole frames completed by `chunk` (and, once given up, the raw bytes)."""
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        if self.mode is Mode.PASSTHROUGH:
            return Batch(b"", 0, 0, [], chunk)
        if self._parts:
            self._parts.append(chunk)
            self._size += len(chunk)
            if self._need and self._size < self._need:
                return _NOTHING
            data = b"".join(self._parts)
            self._parts, self._size, self._need = [], 0, 0
        else:
            data = chunk
        return self._scan(data)

    def take_tail(self) -> bytes:
        """Hand out the buffered incomplete frame; the stream then continues mid-frame (seek)."""
        tail = b"".join(self._parts)
        self._parts, self._size, self._need = [], 0, 0
        if tail and self.mode is Mode.ALIGNED:
            self.mode = Mode.SEEKING
        return tail

    def _scan(self, data: bytes) -> Batch:
        n = len(data)
        pos = count = 0
        msgs: list[Frame] = []
        find = data.find
        seeking = self.mode is Mode.SEEKING
        while pos < n:
            nl = find(b"\n", pos)
            if nl < 0:
                if n - pos > MAX_CONTROL_LINE or not _could_start(data, pos):
                    return self._fail(data, pos, count, msgs)
                break  # incomplete control line: keep it
            stop = nl - 1 if nl > pos and data[nl - 1] == 13 else nl
            if data[pos] in b" \t\r\n":
                return self._fail(data, pos, count, msgs)
            args = data[pos:stop].split()
            op = _OPS.get(args[0], -1)
            if op < 0:
                op = _OPS.get(args[0].upper(), -1)
                if op < 0:
                    return self._fail(data, pos, count, msgs)
            if op == OTHER:
                pos = nl + 1
            else:
                low, high = _TOKENS[op]
                if not low <= len(args) <= high:
                    return self._fail(data, pos, count, msgs)
                total = _size(args[-1])
                header = _size(args[-2]) if op in _HEADERS else 0
                if total < 0 or header < 0 or header > total:
                    return self._fail(data, pos, count, msgs)
                end = nl + 1 + total + 2
                if end > n:
                    self._need = end - pos
                    break  # incomplete payload: keep it
                if not data.startswith(b"\r\n", end - 2):
                    return self._fail(data, pos, count, msgs)
                if not seeking:
                    msgs.append(Frame(op, args[1], pos, end, nl + 1 + header))
                pos = end
            count += 1
            if seeking:
                seeking = False
                self.mode = Mode.ALIGNED
        if pos < n:
            self._parts, self._size = [data[pos:]], n - pos
        if seeking:  # nothing framed yet: nothing goes out until the first frame is whole
            return _NOTHING
        return Batch(data, pos, count, msgs, b"")

    def _fail(self, data: bytes, pos: int, count: int, msgs: list[Frame]) -> Batch:
        """Not NATS at `pos`: pass the rest on untouched (a seeking parser tries the next chunk)."""
        self._parts, self._size, self._need = [], 0, 0
        if self.mode is Mode.SEEKING:
            return Batch(b"", 0, 0, [], data)
        self.mode = Mode.PASSTHROUGH
        return Batch(data, pos, count, msgs, data[pos:])


def compile_subject(pattern: str) -> Callable[[bytes], bool]:
    """A predicate for a NATS subject pattern (`*` one token, `>` the rest); ValueError if bad."""
    if not pattern:
        raise ValueError("subject must not be empty")
    if any(c.isspace() for c in pattern):
        raise ValueError(f"subject {pattern!r} must not contain whitespace")
    tokens = pattern.encode().split(b".")
    for i, token in enumerate(tokens):
        if not token:
            raise ValueError(f"subject {pattern!r} has an empty token")
        if token == b">" and i != len(tokens) - 1:
            raise ValueError(f"subject {pattern!r}: '>' must be the last token")
        if token not in (b"*", b">") and (b"*" in token or b">" in token):
            raise ValueError(f"subject {pattern!r}: wildcards must be whole tokens")
    if pattern == ">":
        return lambda subject: True
    if b"*" not in tokens and b">" not in tokens:
        literal = pattern.encode()
        return lambda subject: subject == literal
    if b"*" not in tokens:  # a.b.> : a prefix plus at least one more token
        prefix = pattern[:-1].encode()
        return lambda subject: len(subject) > len(prefix) and subject.startswith(prefix)
    return lambda subject: _match_tokens(tokens, subject.split(b"."))


def _match_tokens(pattern: list[bytes], subject: list[bytes]) -> bool:
    for i, token in enumerate(pattern):
        if token == b">":
            return len(subject) > i
        if i >= len(subject) or (token != b"*" and token != subject[i]):
            return False
    return len(subject) == len(pattern)
