"""Azure OpenAI: the OpenAI wire protocol at deployment URLs (`/openai/deployments/{name}/...
?api-version=`) or Azure's v1 API (`/openai/v1/...`), with the `api-key` header or an Entra
ID bearer token. Its Responses API is not per deployment: `/openai/v1/responses`, or
`/openai/responses?api-version=` for a dated version, the deployment named in the body's
`model`."""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.providers.azure.config import AzureConfig
from services.router.providers.azure.entra import EntraToken
from services.router.providers.openai.adapter import OpenAIWire
from shared.secrets import resolve_secret


class AzureProvider(OpenAIWire[AzureConfig]):
    config_model = AzureConfig

    def __init__(self, config: AzureConfig, http: UpstreamHttp) -> None:
        timeouts = UpstreamTimeouts(config.timeout_s, config.connect_timeout_s)
        headers = dict(config.headers)
        secret = resolve_secret(config.api_key)
        if secret is not None:
            headers["api-key"] = secret.get_secret_value()
        super().__init__(config, http, timeouts=timeouts, headers=headers, native_responses=config.serves_responses)
        self._endpoint = config.endpoint.rstrip("/")
        self._token = EntraToken(config.name, config.entra, http, timeouts) if config.entra else None

    def url(self, path: str, model: str) -> str:
        if self.config.api_version == "v1":
            return f"{self._endpoint}/openai/v1{path}"
        return (f"{self._endpoint}/openai/deployments/{quote(model, safe='')}{path}"
                f"?api-version={quote(self.config.api_version, safe='')}")

    def responses_url(self, model: str) -> str:
        if self.config.api_version == "v1":
            return f"{self._endpoint}/openai/v1/responses"
        return f"{self._endpoint}/openai/responses?api-version={quote(self.config.api_version, safe='')}"

    def native_base(self) -> str:
        return self._endpoint  # Azure's own paths: /openai/deployments/{name}/...?api-version=, /openai/v1/...

    async def auth_headers(self) -> Mapping[str, str]:
        if self._token is None:
            return self._headers
        return {**self._headers, "authorization": f"Bearer {await self._token.get()}"}
