"""Input-token counts for a translated Messages request, with the gateway's own estimate
(shared/tokens.py: the one the router charges by when an upstream reports no
usage), plus the tool definitions, which the model reads too."""
from __future__ import annotations

from typing import Any

import orjson

from shared.tokens import estimate_prompt_tokens, estimate_text_tokens


def prompt_tokens(body: dict[str, Any]) -> int:
    tools = body.get("tools")
    return estimate_prompt_tokens(body.get("messages") or []) + (
        estimate_text_tokens(orjson.dumps(tools).decode()) if tools else 0)
