"""The one SSE reader, rule by rule (the WHATWG event-stream format)."""
from __future__ import annotations

from collections.abc import AsyncIterator

from services.router.sse import SseEvent, read_sse


async def lines(*raw: bytes) -> AsyncIterator[bytes]:
    for line in raw:
        yield line


async def events(*raw: bytes) -> list[SseEvent]:
    return [event async for event in read_sse(lines(*raw))]


async def test_data_lines_dispatch_at_a_blank_line() -> None:
    assert await events(b'data: {"a":1}\n', b"\n", b"data: [DONE]\n", b"\n") == [
        SseEvent('{"a":1}'), SseEvent("[DONE]")]


async def test_several_data_lines_join_with_newlines() -> None:
    assert await events(b"data: one\n", b"data: two\n", b"data:three\n", b"\n") == [SseEvent("one\ntwo\nthree")]


async def test_event_names_and_ids_are_kept_ids_carry_over() -> None:
    got = await events(b"event: message_start\n", b"id: 7\n", b'data: {"x":1}\n', b"\n",
                       b"event: ping\n", b"data: {}\n", b"\n")
    assert got == [SseEvent('{"x":1}', "message_start", "7"), SseEvent("{}", "ping", "7")]


async def test_comments_and_unknown_fields_are_ignored() -> None:
    assert await events(b": keep-alive\n", b"retry: 1000\n", b"foo: bar\n", b"data: x\n", b"\n") == [SseEvent("x")]


async def test_crlf_and_cr_end_lines() -> None:
    assert await events(b"data: a\r\n", b"\r\n", b"data: b\rdata: c\r\r\n") == [SseEvent("a"), SseEvent("b\nc")]


async def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert await events(b"data:  two spaces\n", b"\n") == [SseEvent(" two spaces")]


async def test_an_event_without_data_is_not_dispatched() -> None:
    assert await events(b"event: ping\n", b"\n", b"data: y\n", b"\n") == [SseEvent("y")]


async def test_a_stream_cut_before_its_blank_line_still_delivers() -> None:
    assert await events(b"data: last\n") == [SseEvent("last")]


async def test_json_with_unicode_line_separators_is_not_split() -> None:
    assert await events('data: {"t":"a\u2028b"}\n'.encode(), b"\n") == [SseEvent('{"t":"a\u2028b"}')]
