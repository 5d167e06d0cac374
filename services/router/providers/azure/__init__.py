"""Provider type `azure`: Azure OpenAI (deployments, api-version, api-key or Entra ID)."""
from services.router.providers.azure.adapter import AzureProvider
from services.router.providers.azure.config import AzureConfig

__all__ = ["AzureConfig", "AzureProvider"]
