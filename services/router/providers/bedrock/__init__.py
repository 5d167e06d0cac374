"""Provider type `bedrock`: AWS Bedrock's Converse API (and Titan embeddings) behind OpenAI's shapes."""
from services.router.providers.bedrock.adapter import BedrockProvider
from services.router.providers.bedrock.config import BedrockConfig

__all__ = ["BedrockConfig", "BedrockProvider"]
