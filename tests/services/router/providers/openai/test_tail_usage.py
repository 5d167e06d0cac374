"""Usage read from the end of a large answer, without parsing the whole of it."""
from __future__ import annotations

import orjson

from services.router.providers.openai import payloads
from services.router.providers.openai.adapter import tail_usage


def test_the_usage_of_a_large_embeddings_answer_is_read_from_its_end() -> None:
    answer = payloads.embeddings_list("m", [f"text number {i}" for i in range(64)], "float", 3072)
    content = orjson.dumps(answer)
    assert len(content) > 1024 * 1024
    usage = tail_usage(content)
    assert usage is not None and (usage.prompt_tokens, usage.total_tokens) == (3 * 64, 3 * 64)


def test_nested_usage_details_and_odd_spacing_are_read() -> None:
    content = b'{"choices": [{"message": {"content": "the word \\"usage\\" in text"}}], "usage" : {"prompt_tokens": 3,' \
              b' "completion_tokens": 2, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 1}}}'
    usage = tail_usage(content)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 2, 5)


def test_an_answer_without_usage_has_none() -> None:
    assert tail_usage(b'{"data": [1, 2, 3]}') is None
    assert tail_usage(b'{"content": "usage"}') is None  # the word as a value, not the key
    assert tail_usage(b'{"usage": {"prompt_tokens": 3') is None  # cut short
