"""A real local HTTP server that answers like Azure OpenAI, and like Microsoft Entra ID's
token endpoint, for the `azure` adapter's tests on the wire.

Azure's data plane is OpenAI's: the same bodies, at deployment URLs
(`/openai/deployments/{deployment}/chat/completions?api-version=...`) or at `/openai/v1/...`,
authenticated by an `api-key` header or an Entra ID bearer token. The answers are the fake
OpenAI's (`FakeOpenAI`); this server adds the routes, the version check, the two ways to
authenticate, and `POST /entra/token` (client credentials, form-encoded). Its Responses
API is not per deployment: `/openai/v1/responses`, or `/openai/responses?api-version=` from
`RESPONSES_API_VERSION` (a preview) on, the deployment named in the body's `model`.
"""
from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.openai_upstream import FakeOpenAI

API_VERSION = "2024-10-21"
RESPONSES_API_VERSION = "2025-04-01-preview"
Handler = Callable[[Request], Awaitable[Response]]


def azure_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class FakeAzure(FakeOpenAI):
    def __init__(self, *, api_key: str | None = None, client_id: str = "", client_secret: str = "",
                 token_lifetime_s: int = 3599) -> None:
        super().__init__()
        self.api_key = api_key
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime_s = token_lifetime_s
        self.tokens_issued: list[str] = []
        self.token_forms: list[dict[str, str]] = []
        self.api_versions: list[str | None] = []
        self.deployments: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/openai/deployments/{deployment}/chat/completions", self._deployment_call(self._chat),
                  methods=["POST"]),
            Route("/openai/deployments/{deployment}/embeddings", self._deployment_call(self._embeddings),
                  methods=["POST"]),
            Route("/openai/v1/chat/completions", self._v1_call(self._chat), methods=["POST"]),
            Route("/openai/v1/embeddings", self._v1_call(self._embeddings), methods=["POST"]),
            Route("/openai/v1/responses", self._v1_call(self._responses), methods=["POST"]),
            Route("/openai/responses", self._versioned_call(self._responses), methods=["POST"]),
            Route("/entra/token", self._token, methods=["POST"]),
        ])

    def _authorized(self, request: Request) -> bool:
        if self.api_key is not None and request.headers.get("api-key") == self.api_key:
            return True
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens_issued

    def _deployment_call(self, answer: Handler) -> Handler:
        async def call(request: Request) -> Response:
            version = request.query_params.get("api-version")
            self.api_versions.append(version)
            self.deployments.append(request.path_params["deployment"])
            if version != API_VERSION:
                return azure_error(404, "404", "Resource not found")
            if not self._authorized(request):
                return azure_error(401, "401", "Access denied due to invalid subscription key or wrong API "
                                               "endpoint. Make sure to provide a valid key for an active "
                                               "subscription and use a correct regional API endpoint for your "
                                               "resource.")
            return await answer(request)

        return call

    def _versioned_call(self, answer: Handler) -> Handler:
        """A route outside the deployments (`/openai/responses`), from a preview version on."""
        async def call(request: Request) -> Response:
            version = request.query_params.get("api-version")
            self.api_versions.append(version)
            if version != RESPONSES_API_VERSION:
                return azure_error(404, "404", "Resource not found")
            if not self._authorized(request):
                return azure_error(401, "401", "Access denied due to invalid subscription key.")
            return await answer(request)

        return call

    def _v1_call(self, answer: Handler) -> Handler:
        async def call(request: Request) -> Response:
            self.api_versions.append(request.query_params.get("api-version"))
            if not self._authorized(request):
                return azure_error(401, "401", "Access denied due to invalid subscription key.")
            return await answer(request)

        return call

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self.token_forms.append(form)
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id \
                or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client "
                                 "secret provided."}, status_code=401)
        token = "eyJ0eXAi." + secrets.token_urlsafe(24)
        self.tokens_issued.append(token)
        return JSONResponse({"token_type": "Bearer", "expires_in": self.token_lifetime_s,
                             "ext_expires_in": self.token_lifetime_s, "access_token": token})
