"""The NATS frame parser: framing under any chunking; pass-through for what it cannot frame."""

from __future__ import annotations

import random

import pytest

from harness.toxiproxy_server.nats_frames import (
    HMSG,
    HPUB,
    MSG,
    OTHER,
    PUB,
    Batch,
    FrameParser,
    Mode,
    compile_subject,
)


def pub(subject: bytes, payload: bytes, reply: bytes = b"", op: bytes = b"PUB") -> bytes:
    args = b" ".join(x for x in (op, subject, reply, b"%d" % len(payload)) if x)
    return args + b"\r\n" + payload + b"\r\n"


def hpub(
    subject: bytes, headers: bytes, body: bytes, middle: bytes = b"", op: bytes = b"HPUB"
) -> bytes:
    sizes = b"%d %d" % (len(headers), len(headers) + len(body))
    args = b" ".join(x for x in (op, subject, middle, sizes) if x)
    return args + b"\r\n" + headers + body + b"\r\n"


HEADERS = b"NATS/1.0\r\nA: b\r\n\r\n"
TRICKY = b"PUB x 1\r\ny\r\nPING\r\n\r\n"  # protocol text inside a payload is payload
CLIENT_FRAMES = [
    b'CONNECT {"verbose":false,"headers":true}\r\n',
    b"PING\r\n",
    b"SUB orders.> 1\r\n",
    b"sub _INBOX.x.* q 2\r\n",
    pub(b"orders.1", b"hello"),
    pub(b"orders.2", b"", b"_INBOX.x.1"),
    pub(b"$JS.ACK.S.C.1.2.3.4.5", b"+ACK", op=b"pub"),
    hpub(b"orders.3", HEADERS, b"body!", b"reply"),
    pub(b"tricky", TRICKY),
    b"UNSUB 2 10\r\n",
    b"PONG\r\n",
    pub(b"$JS.ACK.S.C.1.2.3.4.6", b"-NAK", b"_INBOX.y"),
]
CLIENT = b"".join(CLIENT_FRAMES)
CLIENT_MSGS = [
    (PUB, b"orders.1", b"hello"),
    (PUB, b"orders.2", b""),
    (PUB, b"$JS.ACK.S.C.1.2.3.4.5", b"+ACK"),
    (HPUB, b"orders.3", b"body!"),
    (PUB, b"tricky", TRICKY),
    (PUB, b"$JS.ACK.S.C.1.2.3.4.6", b"-NAK"),
]
SERVER_FRAMES = [
    b'INFO {"server_id":"x","headers":true,"max_payload":1048576}\r\n',
    b"+OK\r\n",
    pub(b"orders.1", b"hello", b"1", op=b"MSG"),
    pub(b"orders.2", b"hi", b"1 _INBOX.x.1", op=b"MSG"),
    hpub(b"orders.3", b"NATS/1.0\r\n\r\n", b"ok", b"1 reply", op=b"HMSG"),
    hpub(b"orders.4", b"NATS/1.0\r\n\r\n", b"", b"1", op=b"hmsg"),
    b"PING\r\n",
    b"-ERR 'Unknown Protocol Operation'\r\n",
]
SERVER = b"".join(SERVER_FRAMES)
SERVER_MSGS = [
    (MSG, b"orders.1", b"hello"),
    (MSG, b"orders.2", b"hi"),
    (HMSG, b"orders.3", b"ok"),
    (HMSG, b"orders.4", b""),
]


def frame_ends(frames: list[bytes]) -> set[int]:
    """Offsets in the joined stream where a frame ends (and 0)."""
    ends, pos = {0}, 0
    for frame in frames:
        pos += len(frame)
        ends.add(pos)
    return ends


class Run:
    """Everything a parser produced over a sequence of chunks."""

    def __init__(self, parser: FrameParser) -> None:
        self.parser = parser
        self.out = bytearray()
        self.msgs: list[tuple[int, bytes, bytes]] = []
        self.frames = 0
        self.boundaries: list[int] = []  # output length after each feed

    def feed(self, chunk: bytes) -> Batch:
        batch = self.parser.feed(chunk)
        for frame in batch.msgs:
            whole = batch.data[frame.start : frame.end]
            assert whole.endswith(b"\r\n")
            self.msgs.append((frame.op, frame.subject, batch.data[frame.body : frame.end - 2]))
        self.frames += batch.count
        self.out += batch.data[: batch.aligned] + batch.raw
        self.boundaries.append(len(self.out))
        return batch

    def finish(self) -> bytes:
        """Output plus what is still buffered: always exactly the input."""
        return bytes(self.out) + self.parser.take_tail()


def run(chunks: list[bytes], aligned: bool = True) -> Run:
    result = Run(FrameParser(aligned))
    for chunk in chunks:
        result.feed(chunk)
    return result


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


# -- framing -------------------------------------------------------------------------------------


def test_one_read_of_every_client_op() -> None:
    result = run([CLIENT])
    assert result.msgs == CLIENT_MSGS
    assert result.frames == len(CLIENT_FRAMES)
    assert result.finish() == CLIENT
    assert result.parser.mode is Mode.ALIGNED


def test_one_read_of_every_server_op() -> None:
    result = run([SERVER])
    assert result.msgs == SERVER_MSGS
    assert result.frames == len(SERVER_FRAMES)
    assert result.finish() == SERVER


@pytest.mark.parametrize("frames", [CLIENT_FRAMES, SERVER_FRAMES], ids=["client", "server"])
def test_split_at_every_byte_offset(frames: list[bytes]) -> None:
    stream = b"".join(frames)
    whole = run([stream])
    ends = frame_ends(frames)
    for cut in range(1, len(stream)):
        result = run([stream[:cut], stream[cut:]])
        assert result.msgs == whole.msgs, cut
        assert result.frames == whole.frames, cut
        assert result.finish() == stream, cut
        # output after the first read stops at the last whole frame, never inside one
        assert result.boundaries[0] == max(end for end in ends if end <= cut), cut


@pytest.mark.parametrize("seed", range(200))
def test_random_chunkings(seed: int) -> None:
    rng = random.Random(seed)
    frames = (CLIENT_FRAMES + SERVER_FRAMES) * rng.randint(1, 3)
    stream = b"".join(frames)
    cuts = rng.sample(range(1, len(stream)), rng.randint(1, 40))
    ends = frame_ends(frames)
    result = run(chunked(stream, cuts))
    assert result.msgs == run([stream]).msgs
    assert result.finish() == stream
    assert all(boundary in ends for boundary in result.boundaries)


def test_one_byte_at_a_time() -> None:
    result = run([bytes([b]) for b in CLIENT])
    assert result.msgs == CLIENT_MSGS
    assert result.finish() == CLIENT


def test_many_pipelined_frames_in_one_read() -> None:
    stream = b"".join(b"PUB s.%d 3\r\nabc\r\n" % i for i in range(5000)) + b"PING\r\n"
    result = run([stream])
    assert len(result.msgs) == 5000 and result.frames == 5001
    assert result.msgs[4999] == (PUB, b"s.4999", b"abc")
    assert result.finish() == stream


def test_a_large_payload_across_many_reads_is_buffered_then_whole() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, with CR and LF bytes inside
    stream = b"PUB big 1048576\r\n" + payload + b"\r\nPING\r\n"
    parser = FrameParser()
    batches = [parser.feed(stream[i : i + 65536]) for i in range(0, len(stream), 65536)]
    assert all(b.aligned == 0 for b in batches[:-1])
    assert parser.buffered == 0
    last = batches[-1]
    assert last.aligned == len(last.data) == len(stream) and last.count == 2
    assert last.data[last.msgs[0].body : last.msgs[0].end - 2] == payload


def test_tabs_and_extra_spaces_between_arguments() -> None:
    result = run([b"PUB\tsubj   reply \t 2\r\nok\r\nMSG  a\t1   3\r\nabc\r\n"])
    assert result.msgs == [(PUB, b"subj", b"ok"), (MSG, b"a", b"abc")]


def test_bare_newline_control_lines() -> None:
    result = run([b"PING\nPUB a 1\nx\r\n"])
    assert result.msgs == [(PUB, b"a", b"x")] and result.frames == 2


def test_incomplete_op_prefix_waits() -> None:
    parser = FrameParser()
    assert parser.feed(b"PU").aligned == 0
    assert parser.mode is Mode.ALIGNED and parser.buffered == 2
    batch = parser.feed(b"B a 1\r\nx\r\n")
    assert batch.count == 1 and batch.raw == b""


# -- anything else: pass-through, byte for byte ----------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        b"GARBAGE here\r\n",
        b"PUB a x\r\nxxxxx\r\n",
        b"PUB a -1\r\n\r\n",
        b"PUB a +1\r\nx\r\n",
        b"PUB a 1_0\r\n0123456789\r\n",
        b"PUB a\r\n",
        b"PUB a b c 1\r\nx\r\n",
        b"PUB a 3\r\nabcd\r\n",  # payload not followed by CRLF
        b"HPUB a 5 3\r\nabc\r\n",  # header longer than the message
        b"HMSG a 1 5\r\nabcde\r\n",
        b"MSG a 1\r\nx\r\n",
        b"PUB a 999999999999\r\n",
        b"\r\nPING\r\n",
        b" PING\r\n",
        b"\x00\x01\x02\x03",
        b"PINGPONGPING",
    ],
)
def test_unparsable_input_switches_to_pass_through(bad: bytes) -> None:
    good = b"PUB ok 2\r\nhi\r\nPING\r\n"
    later = b"PUB after 1\r\nz\r\n"
    result = Run(FrameParser())
    first = result.feed(good + bad)
    assert first.raw == bad  # the frames before it were framed; the rest goes on as is
    assert result.parser.mode is Mode.PASSTHROUGH
    assert result.msgs == [(PUB, b"ok", b"hi")]
    after = result.feed(later)
    assert after.raw == later and after.aligned == 0 and after.msgs == []
    assert result.finish() == good + bad + later


def test_garbage_split_across_reads_is_detected_without_a_newline() -> None:
    parser = FrameParser()
    batch = parser.feed(b"HTTP/1.1 200")  # not NATS: passes on at once, never buffered
    assert batch.raw == b"HTTP/1.1 200" and parser.mode is Mode.PASSTHROUGH


def test_every_split_of_a_garbage_stream_is_passed_on_exactly() -> None:
    stream = CLIENT + b"NOTANOP foo\r\n" + CLIENT
    for cut in range(1, len(stream)):
        result = run([stream[:cut], stream[cut:]])
        assert result.finish() == stream, cut
        assert result.parser.mode is Mode.PASSTHROUGH, cut
        assert result.msgs == CLIENT_MSGS, cut


# -- joining a stream part-way ---------------------------------------------------------------------


def test_seeking_parser_passes_a_mid_frame_chunk_then_aligns() -> None:
    result = Run(FrameParser(aligned=False))
    first = result.feed(b"llo world\r\n")  # the end of some payload
    assert first.raw == b"llo world\r\n" and result.parser.mode is Mode.SEEKING
    second = result.feed(b"PUB a 1\r\nx\r\nPUB b 1\r\ny\r\n")
    # the frame it aligns on is never reported as a message (it might be a misread)
    assert second.count == 2 and result.msgs == [(PUB, b"b", b"y")]
    assert result.parser.mode is Mode.ALIGNED


def test_seeking_parser_buffers_a_first_frame_until_whole() -> None:
    parser = FrameParser(aligned=False)
    assert parser.feed(b"PUB a 5\r\nab").aligned == 0
    batch = parser.feed(b"cde\r\nPUB b 1\r\nx\r\n")
    assert batch.data == b"PUB a 5\r\nabcde\r\nPUB b 1\r\nx\r\n" and batch.count == 2


def test_seeking_parser_drops_a_failed_first_frame_as_raw_and_keeps_seeking() -> None:
    parser = FrameParser(aligned=False)
    assert parser.feed(b"PUB a 5\r\nab").aligned == 0
    batch = parser.feed(b"cdefgh")  # not CRLF after 5 bytes: was a misread
    assert batch.raw == b"PUB a 5\r\nabcdefgh" and parser.mode is Mode.SEEKING


def test_take_tail_hands_out_the_partial_frame_and_seeks() -> None:
    parser = FrameParser()
    parser.feed(b"PING\r\nPUB a 10\r\n0123")
    assert parser.take_tail() == b"PUB a 10\r\n0123"
    assert parser.mode is Mode.SEEKING and parser.buffered == 0
    assert parser.feed(b"456789\r\n").raw == b"456789\r\n"
    fresh = FrameParser()
    fresh.feed(b"PING\r\n")
    assert fresh.take_tail() == b"" and fresh.mode is Mode.ALIGNED


def test_frame_op_codes() -> None:
    assert OTHER == 0 and {PUB, HPUB, MSG, HMSG} == {1, 2, 3, 4}


# -- subject patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        (">", "anything.at.all", True),
        ("orders", "orders", True),
        ("orders", "orders.1", False),
        ("orders.>", "orders.1", True),
        ("orders.>", "orders.1.eu", True),
        ("orders.>", "orders", False),
        ("orders.*", "orders.1", True),
        ("orders.*", "orders.1.eu", False),
        ("orders.*.eu", "orders.1.eu", True),
        ("orders.*.eu", "orders.1.us", False),
        ("*.*.eu", "orders.1.eu", True),
        ("$JS.ACK.STREAM.*.>", "$JS.ACK.STREAM.C.1.2.3.4.5", True),
        ("$JS.ACK.STREAM.*.>", "$JS.ACK.OTHER.C.1.2.3.4.5", False),
        ("a.*.>", "a.b", False),
        ("a.*.>", "a.b.c", True),
    ],
)
def test_subject_patterns(pattern: str, subject: str, matches: bool) -> None:
    assert compile_subject(pattern)(subject.encode()) is matches


@pytest.mark.parametrize("pattern", ["", "a..b", ".a", "a.", "a.>.b", "a*", "a.b>", "a b", ">.a"])
def test_malformed_subject_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        compile_subject(pattern)
