"""Character ranges found in a text, and their replacement by a placeholder."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple


class Span(NamedTuple):
    """A half-open range [start, end) of a text."""

    start: int
    end: int


Finder = Callable[[str], list[Span]]


def replace_spans(text: str, spans: Sequence[Span], replacement: str) -> str:
    """Put `replacement` in place of every span; spans must be sorted and must not overlap.

    The replacement is taken literally (no back-references).
    """
    pieces: list[str] = []
    position = 0
    for span in spans:
        pieces.append(text[position:span.start])
        pieces.append(replacement)
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)
