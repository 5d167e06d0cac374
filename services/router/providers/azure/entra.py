"""Microsoft Entra ID access tokens for an app (OAuth 2.0 client credentials), fetched once
and shared by every call until shortly before they expire."""
from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ValidationError

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.providers.azure.config import EntraApp
from shared.errors import UpstreamError
from shared.secrets import resolve_secret


class TokenAnswer(BaseModel):
    access_token: str
    expires_in: int


class EntraToken:
    def __init__(self, provider: str, app: EntraApp, http: UpstreamHttp, timeouts: UpstreamTimeouts) -> None:
        self._provider = provider
        self._app = app
        self._http = http
        self._timeouts = timeouts
        self._lock = asyncio.Lock()
        self._token = ""
        self._renew_at = 0.0

    async def get(self) -> str:
        if time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:  # one fetch however many calls wait for it
            if time.monotonic() >= self._renew_at:
                await self._fetch()
        return self._token

    async def _fetch(self) -> None:
        secret = resolve_secret(self._app.client_secret)
        assert secret is not None
        form = urlencode({"grant_type": "client_credentials", "client_id": self._app.client_id,
                          "client_secret": secret.get_secret_value(), "scope": self._app.scope}).encode()
        response = await self._http.post(self._provider, self._app.endpoint(), form,
                                         {"content-type": "application/x-www-form-urlencoded"}, self._timeouts)
        if response.status != 200:
            raise UpstreamError(f"provider {self._provider}: Microsoft Entra ID refused the gateway's app "
                                f"(HTTP {response.status})", retryable=True, code="upstream_auth_failed")
        try:
            answer = TokenAnswer.model_validate(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValidationError):
            raise UpstreamError(f"provider {self._provider}: Microsoft Entra ID sent no token", retryable=True,
                                code="upstream_auth_failed") from None
        self._token = answer.access_token
        self._renew_at = time.monotonic() + max(answer.expires_in - self._app.refresh_before_s, 0.0)
