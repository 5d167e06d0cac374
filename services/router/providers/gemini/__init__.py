"""Provider type `gemini`: Google's Gemini API, on AI Studio (API key) or Vertex AI (service account)."""
from services.router.providers.gemini.adapter import GeminiProvider
from services.router.providers.gemini.config import GeminiConfig, VertexConfig

__all__ = ["GeminiConfig", "GeminiProvider", "VertexConfig"]
