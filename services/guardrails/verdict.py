"""What a guardrail check decides: one verdict shape for every check (allow, block, modify),
naming rules and counts, never the text that matched."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Finding(BaseModel):
    rule: str
    action: Literal["block", "redact"]
    count: int = 1


class GuardrailVerdict(BaseModel):
    verdict: Literal["allow", "block", "modify"]
    rule: str | None = None
    message: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    # the checked part of the body (chat messages, embeddings input) as changed; set when
    # verdict == "modify"
    document: Any = None
