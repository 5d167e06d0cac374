"""The one pooled upstream HTTP client every adapter shares.

An `httpx.AsyncClient` whose transport is aiohttp's connection pool (httpx-aiohttp):
measured on the 2-core box, httpx's own pool spends a quarter of the router's CPU checking
idle connections at 32 concurrent requests; with aiohttp underneath the router serves
several times more requests per core (docs/benchmarks.md). Adapters only see httpx.
"""
from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

MAX_CONNECTIONS = 1000


def make_http_client() -> httpx.AsyncClient:
    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30, ttl_dns_cache=300)
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    transport = AiohttpTransport(client=session)
    return httpx.AsyncClient(transport=transport, follow_redirects=False)
