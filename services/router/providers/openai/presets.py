"""OpenAI-compatible upstreams by `type:`: their default base URL and their documented quirks,
as data on the one OpenAI adapter. A preset is a default: every field can be set in the
provider's entry of the config (`base_url`, `stream_usage`, `drop_fields`, ...)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str
    needs_key: bool = True  # hosted APIs refuse calls without one; local servers need none
    # whether the upstream accepts `stream_options.include_usage` (the router asks for usage
    # with it; without it, usage comes from the upstream's last chunk or is counted)
    stream_usage: bool = True
    # top-level request fields the upstream refuses with an error: left out of the call
    drop_fields: frozenset[str] = frozenset()
    # fields of each message it refuses
    drop_message_fields: frozenset[str] = frozenset()
    # whether the upstream at the preset's own base URL serves the Responses API (`/responses`);
    # an entry with another base URL (a proxy, a local server) says so itself (`native_responses`)
    native_responses: bool = False


PRESETS: dict[str, Preset] = {
    "openai": Preset("https://api.openai.com/v1", native_responses=True),
    # console.groq.com/docs/openai: logprobs, logit_bias, top_logprobs, messages[].name → 400
    "groq": Preset("https://api.groq.com/openai/v1", drop_fields=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
                   drop_message_fields=frozenset({"name"})),
    "xai": Preset("https://api.x.ai/v1"),
    # Mistral answers 422 (extra_forbidden) to stream_options; its last chunk carries usage
    "mistral": Preset("https://api.mistral.ai/v1", stream_usage=False),
    "deepseek": Preset("https://api.deepseek.com/v1"),
    "openrouter": Preset("https://openrouter.ai/api/v1"),
    "together": Preset("https://api.together.xyz/v1"),
    "fireworks": Preset("https://api.fireworks.ai/inference/v1"),
    "ollama": Preset("http://127.0.0.1:11434/v1", needs_key=False),
    "vllm": Preset("http://127.0.0.1:8000/v1", needs_key=False),
    "lmstudio": Preset("http://127.0.0.1:1234/v1", needs_key=False),
}
