"""The one pooled upstream HTTP client every adapter shares: raw aiohttp.

Measured on the 2-core box (docs/benchmarks.md): per call to a fast upstream, httpx's own
pool costs 0.95 ms, httpx over aiohttp's pool 0.39 ms, raw aiohttp 0.18 ms. Adapters see
only this small interface, so the choice stays here. Transport failures become
GatewayErrors naming the provider (never a URL or a credential): a timeout is 504, any
other failure to reach the upstream 502, both retryable on the next deployment.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from yarl import URL

from shared.errors import GatewayError, UpstreamError, UpstreamTimeout

MAX_CONNECTIONS = 1000
KEEPALIVE_S = 30.0


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    total_s: float  # a whole answer; for streams, the response head and each gap between reads
    connect_s: float


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names
    content: bytes


class UpstreamStream:
    """An upstream response being read: its status and headers, then its body line by line
    (or chunk by chunk)."""

    def __init__(self, provider: str, response: aiohttp.ClientResponse) -> None:
        self._provider = provider
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in response.headers.items()}

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self._provider, exc) from None

    async def lines(self) -> AsyncIterator[bytes]:
        content = self._response.content
        while True:
            try:
                line = await content.readline()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise transport_error(self._provider, exc) from None
            if not line:
                return
            yield line

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as the bytes arrive, for binary framings (AWS event streams)."""
        content = self._response.content
        while True:
            try:
                data = await content.readany()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise transport_error(self._provider, exc) from None
            if not data:
                return
            yield data


def transport_error(provider: str, exc: BaseException) -> GatewayError:
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"provider {provider} timed out", retryable=True)
    return UpstreamError(f"provider {provider} is unreachable ({type(exc).__name__})", code="upstream_unreachable",
                         retryable=True)


class UpstreamHttp:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use, inside the running loop
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",))
        return self._session

    async def post(self, provider: str, url: str, content: bytes, headers: Mapping[str, str],
                   timeouts: UpstreamTimeouts) -> UpstreamResponse:
        timeout = aiohttp.ClientTimeout(total=timeouts.total_s, connect=timeouts.connect_s)
        try:
            async with self._client().post(url, data=content, headers=headers, timeout=timeout) as response:
                body = await response.read()
                return UpstreamResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(provider, exc) from None

    @asynccontextmanager
    async def stream(self, provider: str, url: str, content: bytes, headers: Mapping[str, str],
                     timeouts: UpstreamTimeouts) -> AsyncIterator[UpstreamStream]:
        # no total: a stream may run for long; each read may not wait longer than total_s
        timeout = aiohttp.ClientTimeout(total=None, connect=timeouts.connect_s, sock_read=timeouts.total_s)
        try:
            response = await self._client().post(url, data=content, headers=headers, timeout=timeout)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(provider, exc) from None
        try:
            yield UpstreamStream(provider, response)
        finally:
            response.close()  # an unfinished stream is not returned to the pool

    @asynccontextmanager
    async def open(self, provider: str, method: str, url: URL, content: bytes | None, headers: Mapping[str, str],
                   timeouts: UpstreamTimeouts) -> AsyncIterator[UpstreamStream]:
        """Any method, the URL sent as built (no re-encoding), redirects never followed (a
        3xx is the answer): pass-through calls. Read like `stream`."""
        timeout = aiohttp.ClientTimeout(total=None, connect=timeouts.connect_s, sock_read=timeouts.total_s)
        try:
            response = await self._client().request(method, url, data=content, headers=headers, timeout=timeout,
                                                     allow_redirects=False)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(provider, exc) from None
        try:
            yield UpstreamStream(provider, response)
        finally:
            response.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
