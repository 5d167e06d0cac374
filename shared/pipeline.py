"""The pipeline, defined once: the ordered stages a call passes on its way to the upstream.

The ingress reads it to pick the first stage of a call and writes the stages still ahead
into the call's envelope; each stage reads the envelope to know where the call goes next
(`shared.protocol.forward`). The last stage (the router) answers the caller's inbox
directly. Adding or removing a stage is one edit here (and a worker that serves it).
"""
from __future__ import annotations

from enum import StrEnum


class Endpoint(StrEnum):
    CHAT = "chat"
    RESPONSES = "responses"  # /v1/responses: natively where the provider has it, else translated to chat
    EMBEDDINGS = "embeddings"
    PASSTHROUGH = "passthrough"  # /p/{provider}/...: the provider's native API (shared/native.py)
    COMPLETIONS = "completions"  # the legacy /v1/completions
    MODERATIONS = "moderations"
    IMAGES = "images"  # /v1/images/generations
    SPEECH = "speech"  # /v1/audio/speech: a binary answer
    TRANSCRIPTIONS = "transcriptions"  # /v1/audio/transcriptions: a multipart upload


class Stage(StrEnum):
    GUARDRAILS = "guardrails"
    ROUTER = "router"


PIPELINES: dict[Endpoint, tuple[Stage, ...]] = {
    Endpoint.CHAT: (Stage.GUARDRAILS, Stage.ROUTER),
    Endpoint.RESPONSES: (Stage.GUARDRAILS, Stage.ROUTER),
    Endpoint.EMBEDDINGS: (Stage.GUARDRAILS, Stage.ROUTER),
    # guardrails cannot read formats they do not know: a pass-through call skips them
    Endpoint.PASSTHROUGH: (Stage.ROUTER,),
    Endpoint.COMPLETIONS: (Stage.GUARDRAILS, Stage.ROUTER),
    Endpoint.MODERATIONS: (Stage.GUARDRAILS, Stage.ROUTER),
    Endpoint.IMAGES: (Stage.GUARDRAILS, Stage.ROUTER),
    Endpoint.SPEECH: (Stage.GUARDRAILS, Stage.ROUTER),
    Endpoint.TRANSCRIPTIONS: (Stage.ROUTER,),  # audio: nothing guardrails can read
}

# stages a configuration may switch off (the router never is: it is the one that answers)
OPTIONAL_STAGES = frozenset({Stage.GUARDRAILS})


def stages_for(endpoint: Endpoint, disabled: frozenset[Stage] = frozenset()) -> tuple[Stage, ...]:
    return tuple(stage for stage in PIPELINES[endpoint] if stage not in (disabled & OPTIONAL_STAGES))


def stage_subject(stage: Stage, endpoint: Endpoint) -> str:
    """The request-reply subject a stage's queue group serves for one endpoint."""
    return f"jetgate.rpc.{stage.value}.{endpoint.value}"


def queue_group(stage: Stage) -> str:
    return stage.value


def served_by(stage: Stage) -> tuple[Endpoint, ...]:
    """The endpoints whose pipeline passes through `stage`."""
    return tuple(endpoint for endpoint, stages in PIPELINES.items() if stage in stages)
