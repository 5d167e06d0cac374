"""The audio requests: speech (`POST /v1/audio/speech`, JSON in, audio out) validated as
OpenAI does; the text fields of a transcription upload (a multipart form, read by
services/ingress/multipart_form.py); the media types of their answers."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


TRANSCRIPT_MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json",
                          "diarized_json": "application/json", "text": "text/plain; charset=utf-8",
                          "srt": "text/plain; charset=utf-8", "vtt": "text/plain; charset=utf-8"}


class TranscriptionForm(BaseModel):
    """The text fields of a transcription upload (form fields are strings: read as OpenAI
    reads them, "0.2" a number); the audio itself is the `file` part."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    # a streamed transcript (SSE of transcript.text.delta) is not relayed
    stream: Literal["false", "False"] | None = None
    timestamp_granularities: list[Literal["word", "segment"]] | None = Field(
        default=None, alias="timestamp_granularities[]")
    include: list[Literal["logprobs"]] | None = Field(default=None, alias="include[]")

    @property
    def media_type(self) -> str:
        return TRANSCRIPT_MEDIA_TYPES[self.response_format or "json"]
