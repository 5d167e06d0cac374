"""Payloads of OpenAI's other endpoints, shaped after the API reference: legacy completions
(`text_completion`, plain and streamed), moderations, image generation, transcriptions.
Deterministic counts, as in payloads.py: prompt tokens are the prompt's words, a
completion is `COMPLETION_TOKENS` pieces."""
from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from services.router.providers.openai.payloads import COMPLETION_TOKENS, REPLY_PIECES, REPLY_TEXT, SYSTEM_FINGERPRINT, usage

Json = dict[str, Any]


def _cmpl_id() -> str:
    return "cmpl-" + secrets.token_hex(14)


def count_prompt_tokens(prompt: Any) -> int:
    """Words of a string prompt (or of each string), or the number of token ids."""
    if isinstance(prompt, str):
        return len(prompt.split())
    if isinstance(prompt, list):
        return sum(count_prompt_tokens(p) if not isinstance(p, int) else 1 for p in prompt)
    return 0


def _text_chunk(cid: str, created: int, model: str, text: str, finish_reason: str | None) -> Json:
    return {"id": cid, "object": "text_completion", "created": created, "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]}


def text_completion(model: str, prompt_tokens: int, text: str = REPLY_TEXT) -> Json:
    body = _text_chunk(_cmpl_id(), int(time.time()), model, text, "stop")
    body["usage"] = usage(prompt_tokens, COMPLETION_TOKENS)
    return body


def text_completion_stream(model: str, prompt_tokens: int, with_usage: bool) -> list[Json]:
    """One chunk per reply piece, the last with `finish_reason`; then, when usage was asked
    for, a chunk with no choices and the usage."""
    cid, created = _cmpl_id(), int(time.time())
    chunks = [_text_chunk(cid, created, model, piece, None) for piece in REPLY_PIECES]
    chunks.append(_text_chunk(cid, created, model, "", "stop"))
    if with_usage:
        chunks.append({"id": cid, "object": "text_completion", "created": created, "model": model,
                       "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [],
                       "usage": usage(prompt_tokens, COMPLETION_TOKENS)})
    return chunks


MODERATION_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
                         "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
                         "sexual/minors", "violence", "violence/graphic")
FLAGGED_WORD = "attack"  # an input holding it is flagged for violence


def _moderation_result(text: str, input_types: list[str]) -> Json:
    flagged = FLAGGED_WORD in text.lower()
    categories = {name: flagged and name == "violence" for name in MODERATION_CATEGORIES}
    scores = {name: (0.91 if categories[name] else 0.0001) for name in MODERATION_CATEGORIES}
    applied = {name: (input_types if not name.startswith(("harassment", "hate", "illicit", "sexual/minors"))
                      and not name.endswith("/intent") else ["text"]) for name in MODERATION_CATEGORIES}
    return {"flagged": flagged, "categories": categories, "category_scores": scores,
            "category_applied_input_types": applied}


def moderation(model: str, inputs: Any) -> Json:
    """One result per string input; text and image parts are one input together."""
    if isinstance(inputs, str):
        results = [_moderation_result(inputs, ["text"])]
    elif inputs and isinstance(inputs[0], dict):
        text = " ".join(p.get("text", "") for p in inputs if p.get("type") == "text")
        types = sorted({"text" if p.get("type") == "text" else "image" for p in inputs})
        results = [_moderation_result(text, types)]
    else:
        results = [_moderation_result(text, ["text"]) for text in inputs]
    return {"id": "modr-" + secrets.token_hex(12), "model": model, "results": results}


# a 1x1 transparent PNG: what `b64_json` answers carry
PIXEL_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63fcff1f0003030200efa2a75b0000000049454e44ae426082")).decode()
IMAGE_INPUT_TOKENS_PER_WORD = 1
IMAGE_OUTPUT_TOKENS = 1056  # gpt-image-1 at 1024x1024, low quality: 272; medium 1056


def image_generation(model: str, prompt: str, n: int, response_format: str | None) -> Json:
    """`data` of n images (base64 for gpt-image-*, which always answers so; else as asked),
    with usage for the gpt-image models (dall-e reports none)."""
    token_based = model.startswith("gpt-image")
    if token_based or response_format == "b64_json":
        data: list[Json] = [{"b64_json": PIXEL_PNG} for _ in range(n)]
    else:
        data = [{"url": f"https://images.example.com/{secrets.token_hex(8)}.png", "revised_prompt": prompt}
                for _ in range(n)]
    answer: Json = {"created": int(time.time()), "data": data}
    if token_based:
        words = len(prompt.split()) * IMAGE_INPUT_TOKENS_PER_WORD
        answer["usage"] = {"total_tokens": words + IMAGE_OUTPUT_TOKENS * n, "input_tokens": words,
                           "output_tokens": IMAGE_OUTPUT_TOKENS * n,
                           "input_tokens_details": {"text_tokens": words, "image_tokens": 0}}
    return answer


_AUDIO_MAGIC = {"mp3": b"ID3\x04\x00\x00", "opus": b"OggS\x00\x02", "aac": b"\xff\xf1\x50\x80",
                "flac": b"fLaC\x00\x00", "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ", "pcm": b""}


def speech_audio(text: str, response_format: str) -> bytes:
    """Deterministic bytes standing for the spoken `text`: the format's magic number, then
    a digest of the text per 16 characters (not playable, but binary and of the format)."""
    frames = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(0, len(text), 16))
    return _AUDIO_MAGIC.get(response_format, b"") + b"\x00\xff" + frames


TRANSCRIPT = "Imagine the wildest idea that you've ever had, and you're curious about how it might scale."
AUDIO_BYTES_PER_SECOND = 1000  # the fake's "audio": its length in seconds is its size / 1,000


def audio_seconds(size: int) -> int:
    return max(1, -(-size // AUDIO_BYTES_PER_SECOND))


def transcription(model: str, audio_size: int, response_format: str) -> Json | str:
    """The transcript: text formats as text; JSON with `usage` by duration (whisper-1) or by
    tokens (gpt-4o-transcribe and the others)."""
    seconds = audio_seconds(audio_size)
    if response_format == "text":
        return TRANSCRIPT + "\n"
    if response_format in ("srt", "vtt"):
        head = "WEBVTT\n\n" if response_format == "vtt" else "1\n"
        stamp = f"00:00:00{',' if response_format == 'srt' else '.'}000 --> 00:00:{seconds:02d}.000"
        return f"{head}{stamp}\n{TRANSCRIPT}\n\n"
    if model == "whisper-1":
        use: Json = {"type": "duration", "seconds": seconds}
    else:
        words = len(TRANSCRIPT.split())
        use = {"type": "tokens", "input_tokens": seconds * 10, "input_token_details": {"text_tokens": 0,
               "audio_tokens": seconds * 10}, "output_tokens": words, "total_tokens": seconds * 10 + words}
    if response_format == "verbose_json":
        return {"task": "transcribe", "language": "english", "duration": float(seconds), "text": TRANSCRIPT,
                "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": float(seconds), "text": TRANSCRIPT,
                              "tokens": [50364, 8045], "temperature": 0.0, "avg_logprob": -0.2,
                              "compression_ratio": 1.2, "no_speech_prob": 0.01}], "usage": use}
    return {"text": TRANSCRIPT, "usage": use}
