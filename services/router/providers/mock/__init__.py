"""Provider type `mock`: answers locally in OpenAI's shapes."""
from services.router.providers.mock.adapter import MockProvider
from services.router.providers.mock.config import MockConfig

__all__ = ["MockConfig", "MockProvider"]
