"""What the router keeps of its whole replies for the ingress to ask again: a short window
in steady state, everything around an outage for a while, never more than its byte bound."""
from __future__ import annotations

from services.router.kept_replies import KeptReplies
from shared.protocol import CallUsage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kept(max_bytes: int = 1 << 20) -> tuple[KeptReplies, Clock]:
    clock = Clock()
    return KeptReplies(window_s=3.0, keep_s=30.0, max_bytes=max_bytes, clock=clock), clock


def keep(replies: KeptReplies, call_id: str, body: bytes = b"{}") -> None:
    replies.keep(call_id, f"_INBOX.{call_id}", body, CallUsage(prompt_tokens=1, completion_tokens=2), {"x": "y"})


def test_a_reply_is_kept_for_the_window_then_dropped_as_others_come() -> None:
    replies, clock = kept()
    keep(replies, "a", b"answer")
    clock.now += 2.9
    keep(replies, "b")
    assert len(replies) == 2
    clock.now += 0.2  # "a" is 3.1 s old
    keep(replies, "c")
    assert replies.take("a") is None and len(replies) == 2
    taken = replies.take("b")
    assert taken is not None and (taken.inbox, taken.body, taken.client) == ("_INBOX.b", b"{}", {"x": "y"})
    assert replies.take("b") is None  # asked for once


async def test_an_outage_holds_what_was_sent_before_during_and_just_after_it() -> None:
    replies, clock = kept()
    keep(replies, "before")  # sent just before the server died, unnoticed
    clock.now += 1.0
    await replies.disconnected()
    clock.now += 20.0  # down a long while: nothing ages out
    keep(replies, "during")
    await replies.reconnected()
    clock.now += 2.0
    keep(replies, "after")  # within the window after the link is back
    clock.now += 25.0  # the ingress asks late, within keep_s
    keep(replies, "later")
    assert {call for call in ("before", "during", "after") if replies.take(call)} == {"before", "during", "after"}
    clock.now += 10.0  # the hold is over: back to the window
    keep(replies, "last")
    assert replies.take("later") is None and replies.take("last") is not None


def test_the_byte_bound_drops_the_oldest_first() -> None:
    replies, _ = kept(max_bytes=10)
    keep(replies, "a", b"12345")
    keep(replies, "b", b"12345")
    assert replies.held_bytes == 10
    keep(replies, "c", b"123")
    assert replies.take("a") is None and replies.held_bytes == 8
    assert replies.take("b") is not None and replies.take("c") is not None and replies.held_bytes == 0


def test_a_reply_kept_again_for_the_same_call_replaces_the_first() -> None:
    replies, _ = kept()
    keep(replies, "a", b"first")
    keep(replies, "a", b"second")
    taken = replies.take("a")
    assert len(replies) == 0 and replies.held_bytes == 0 and taken is not None and taken.body == b"second"
