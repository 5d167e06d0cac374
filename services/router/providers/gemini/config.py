"""Config of a Gemini provider: AI Studio with an API key, or Vertex AI with a service account.

```yaml
- name: gemini
  type: gemini
  api_key: env:GEMINI_API_KEY            # AI Studio; sent as x-goog-api-key
- name: vertex
  type: gemini
  vertex: {project: my-project, location: us-central1, credentials: file:/etc/jetgate/sa.json}
```
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.router.providers.base import ProviderConfig
from shared.secrets import SecretRef

AI_STUDIO_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class VertexConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    project: str = Field(min_length=1)
    location: str = Field(min_length=1, pattern=r"^[a-z0-9-]+$")
    credentials: SecretRef  # the service-account JSON key file (file:/path) or its JSON in an env variable
    token_url: str | None = None  # None: the key file's token_uri, else Google's
    base_url: str | None = None  # None: https://{location}-aiplatform.googleapis.com/v1
    scope: str = CLOUD_PLATFORM_SCOPE
    token_refresh_margin_s: float = Field(default=300.0, ge=0)  # a cached token is renewed this long before it expires

    def api_base(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "aiplatform.googleapis.com" if self.location == "global" else f"{self.location}-aiplatform.googleapis.com"
        return f"https://{host}/v1"


class GeminiConfig(ProviderConfig):
    type: Literal["gemini"] = "gemini"
    base_url: str = AI_STUDIO_BASE_URL  # AI Studio's; Vertex's comes from `vertex`
    api_key: SecretRef | None = None
    vertex: VertexConfig | None = None
    timeout_s: float = 600.0  # thinking models take minutes before the first token
    connect_timeout_s: float = 5.0
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_credential(self) -> GeminiConfig:
        if self.api_key is not None and self.vertex is not None:
            raise ValueError("give either api_key (AI Studio) or vertex (service account), not both")
        return self
