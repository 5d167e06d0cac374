"""Vertex AI access tokens from a service account: an OAuth2 JWT-bearer grant (RFC 7523).

The assertion is signed with the account's private key by google-auth; it is posted
through the router's shared upstream client (with the provider's timeouts) to the token
endpoint (configurable, so a test can serve it), and the token is cached until shortly
before it expires. Concurrent calls share one refresh. google-auth is imported when the
first token is made: a router without a Vertex deployment does not load it.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from services.router.providers.gemini.config import GOOGLE_TOKEN_URL, VertexConfig
from shared.errors import UpstreamError
from shared.secrets import resolve_secret

if TYPE_CHECKING:
    from google.auth import crypt

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # the longest Google accepts


@dataclass(frozen=True, slots=True)
class _ServiceAccount:
    email: str
    signer: crypt.Signer
    token_url: str


class VertexTokens:
    def __init__(self, provider: str, config: VertexConfig, http: UpstreamHttp, timeouts: UpstreamTimeouts) -> None:
        self._provider = provider
        self._config = config
        self._http = http
        self._timeouts = timeouts
        self._account: _ServiceAccount | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def current(self) -> str | None:
        """The cached token (for scrubbing it from messages), if any."""
        return self._token

    def _load(self) -> _ServiceAccount:
        if self._account is None:
            from google.auth import crypt

            failed = UpstreamError(f"provider {self._provider}: its service-account credentials could not be read",
                                   code="upstream_auth_failed", retryable=True)
            try:
                secret = resolve_secret(self._config.credentials)
                info: Any = orjson.loads(secret.get_secret_value()) if secret is not None else None
                if not isinstance(info, dict) or not info.get("client_email") or not info.get("private_key"):
                    raise failed
                signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]
            except (OSError, ValueError, TypeError):  # never the key's text in a message
                raise failed from None
            token_url = self._config.token_url or str(info.get("token_uri") or GOOGLE_TOKEN_URL)
            self._account = _ServiceAccount(str(info["client_email"]), signer, token_url)
        return self._account

    def _assertion(self, account: _ServiceAccount) -> str:
        from google.auth import jwt

        now = int(time.time())
        # the audience is Google's token endpoint wherever the grant is posted, as google-auth's own credentials do
        claims = {"iss": account.email, "scope": self._config.scope, "aud": GOOGLE_TOKEN_URL,
                  "iat": now, "exp": now + ASSERTION_LIFETIME_S}
        signed: bytes = jwt.encode(account.signer, claims)  # type: ignore[no-untyped-call]
        return signed.decode()

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            return await self._refresh()

    def invalidate(self) -> None:
        """Forget the cached token (the upstream refused it)."""
        self._token, self._expires_at = None, 0.0

    async def _refresh(self) -> str:
        account = self._load()
        form = urlencode({"grant_type": JWT_BEARER_GRANT, "assertion": self._assertion(account)}).encode()
        started = time.monotonic()
        response = await self._http.post(self._provider, account.token_url, form,
                                         {"content-type": "application/x-www-form-urlencoded"}, self._timeouts)
        refused = UpstreamError(f"provider {self._provider}: the token endpoint refused its service account",
                                code="upstream_auth_failed", retryable=True)
        if response.status >= 500:
            raise UpstreamError(f"provider {self._provider}: the token endpoint failed with HTTP {response.status}",
                                retryable=True)
        if response.status >= 400:
            raise refused
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise refused from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise refused
        lifetime = float(answer.get("expires_in") or ASSERTION_LIFETIME_S)
        self._token = token
        self._expires_at = started + max(0.0, lifetime - self._config.token_refresh_margin_s)
        return token
