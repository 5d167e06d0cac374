"""Config of an Azure OpenAI resource: its endpoint, the API version, and either its key or
a Microsoft Entra ID app (client credentials). A model's deployment `model:` is the Azure
deployment name."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.router.providers.base import ProviderConfig
from shared.secrets import SecretRef

ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
RESPONSES_SINCE = "2025-03-01-preview"  # the first dated API version with the Responses API


class EntraApp(BaseModel):
    """An app registration allowed on the resource (role Cognitive Services OpenAI User)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    tenant_id: str
    client_id: str
    client_secret: SecretRef
    scope: str = ENTRA_SCOPE
    token_url: str | None = None  # https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token
    refresh_before_s: float = 300.0  # a token is renewed this long before it expires

    def endpoint(self) -> str:
        return self.token_url or f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token"


class AzureConfig(ProviderConfig):
    type: Literal["azure"] = "azure"
    endpoint: str  # https://{resource}.openai.azure.com
    # a dated version (deployment URLs, `?api-version=`), or "v1" for Azure's /openai/v1 API
    api_version: str = "2024-10-21"
    api_key: SecretRef | None = None
    entra: EntraApp | None = None
    timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    headers: dict[str, str] = Field(default_factory=dict)
    # `/v1/responses` sent to Azure's Responses API (else translated to chat completions); by
    # default where the API version has it: "v1" (`/openai/v1/responses`), "preview" and the
    # dated previews from 2025-03-01-preview on (`/openai/responses?api-version=`)
    native_responses: bool | None = None

    @property
    def serves_responses(self) -> bool:
        if self.native_responses is not None:
            return self.native_responses
        version = self.api_version
        return version in ("v1", "preview") or (version.endswith("-preview") and version >= RESPONSES_SINCE)

    @model_validator(mode="after")
    def _one_credential(self) -> AzureConfig:
        if (self.api_key is None) == (self.entra is None):
            raise ValueError("give exactly one of api_key or entra")
        return self
