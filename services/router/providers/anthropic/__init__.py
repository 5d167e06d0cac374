"""Provider type `anthropic`: the native Anthropic Messages API behind OpenAI's chat shapes."""
from services.router.providers.anthropic.adapter import AnthropicProvider
from services.router.providers.anthropic.config import AnthropicConfig

__all__ = ["AnthropicConfig", "AnthropicProvider"]
