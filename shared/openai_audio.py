"""The audio requests: speech (`POST /v1/audio/speech`, JSON in, audio out) validated as
OpenAI does, and the audio formats' media types. Transcriptions are multipart forms
(services/ingress/multipart_form.py)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.openai_messages import Open

SPEECH_MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac",
                      "wav": "audio/wav", "pcm": "audio/pcm"}


class CustomVoice(Open):
    id: str = Field(min_length=1)


class SpeechRequest(Open):
    model: str = Field(min_length=1)
    input: str = Field(min_length=1, max_length=4096)
    voice: str | CustomVoice
    instructions: str | None = Field(default=None, max_length=4096)
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] | None = None
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    # the audio itself is relayed; an SSE stream of audio deltas is not
    stream_format: Literal["audio"] | None = None

    @property
    def media_type(self) -> str:
        return SPEECH_MEDIA_TYPES[self.response_format or "mp3"]
