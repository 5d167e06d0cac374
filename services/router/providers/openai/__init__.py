"""Provider type `openai`: any OpenAI-compatible API."""
from services.router.providers.openai.adapter import OpenAIProvider
from services.router.providers.openai.config import OpenAIConfig

__all__ = ["OpenAIConfig", "OpenAIProvider"]
