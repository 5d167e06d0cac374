"""A real local HTTP server that answers like Google's Gemini API, for tests on the wire.

`FakeGemini` runs a Starlette app under uvicorn in a background thread on a free
127.0.0.1 port and serves both faces of Gemini:

- AI Studio, under `.base_url` (`/v1beta`): `models/{model}:generateContent`,
  `:streamGenerateContent?alt=sse`, `:batchEmbedContents`; the key in `x-goog-api-key`
  (a wrong one gets Gemini's 400 `API_KEY_INVALID`, as the real API answers);
- Vertex AI, under `.vertex_base_url` (`/v1`): `projects/{p}/locations/{l}/publishers/google/
  models/{model}:generateContent | :streamGenerateContent | :predict`, with a bearer token that
  its token endpoint (`.token_url`) issued for a JWT-bearer grant signed by the service
  account of `.service_account()` (signature and audience are checked; a bad one gets
  `invalid_grant`).

The model name picks the behaviour: any other name answers normally (a `functionCall` when
the request declares functions and does not forbid them; a description of the images sent
inline); `thinking` adds thought, thinking and cached token counts, signs its function calls
(`thoughtSignature`) and refuses a history whose function calls come back unsigned; `blocked` refuses the
prompt (`promptFeedback.blockReason`); `safety` stops the candidate with `SAFETY`;
`stream-error` streams two events, then an error event;
`fail-400`, `bad-key`, `too-long`, `fail-401`, `fail-403`, `fail-404`, `fail-429` (with
RetryInfo), `fail-500`, `fail-503` answer with Gemini's error bodies. Every request is
recorded (`.requests`) first. Token counts: see services/router/providers/gemini/payloads.py.
"""
from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.router.providers.gemini import payloads as p
from tests.fakes.server import ThreadedServer

VERTEX_PATH = "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}"
SA_EMAIL = "jetgate-tests@fake-project.iam.gserviceaccount.com"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"  # a grant's `aud`, wherever it is posted

_FAILURES: dict[str, tuple[int, Callable[[str], p.Json]]] = {
    "fail-400": (400, lambda m: p.invalid_argument()),
    "bad-key": (400, lambda m: p.api_key_invalid()),
    "too-long": (400, lambda m: p.token_limit_exceeded()),
    "fail-401": (401, lambda m: p.unauthenticated()),
    "fail-403": (403, lambda m: p.permission_denied()),
    "fail-404": (404, p.not_found),
    "fail-500": (500, lambda m: p.internal()),
    "fail-503": (503, lambda m: p.unavailable()),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    json: Any  # parsed JSON body; None when there was none
    form: dict[str, str]  # parsed form body (token requests)


class FakeGemini:
    """Start with `start()` (or `with FakeGemini() as fake:`)."""

    def __init__(self, *, expected_api_key: str | None = None, retry_delay_s: int = 13, token_expires_in: int = 3599) -> None:
        self.expected_api_key = expected_api_key
        self.retry_delay_s = retry_delay_s
        self.token_expires_in = token_expires_in
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._tokens: set[str] = set()
        self._server: ThreadedServer | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> FakeGemini:
        self._server = ThreadedServer(self._app(), "fake-gemini")
        self._server.start(timeout)
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1beta"

    @property
    def vertex_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def service_account(self, token_uri: str | None = None) -> dict[str, str]:
        """A service-account key file's content whose key this server trusts."""
        private = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "fake-project", "private_key_id": secrets.token_hex(20),
                "private_key": private, "client_email": SA_EMAIL, "client_id": "1234567890",
                "token_uri": token_uri or self.token_url}

    # -- what tests read -------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def model_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path != "/token"]

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/token"]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    # -- HTTP ------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1beta/models/{target}", self._ai_studio, methods=["POST"]),
            Route(VERTEX_PATH, self._vertex, methods=["POST"]),
            Route("/token", self._token, methods=["POST"]),
        ])

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        body: Any = None
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        elif raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
        recorded = RecordedRequest(request.method, request.url.path, request.url.query,
                                   {k.lower(): v for k, v in request.headers.items()}, body, form)
        with self._lock:
            self._requests.append(recorded)
        return recorded

    async def _ai_studio(self, request: Request) -> Response:
        recorded = await self._record(request)
        if self.expected_api_key is not None and recorded.headers.get("x-goog-api-key") != self.expected_api_key:
            return _json(400, p.api_key_invalid())
        return self._answer(recorded, request.path_params["target"], vertex=False)

    async def _vertex(self, request: Request) -> Response:
        recorded = await self._record(request)
        auth = recorded.headers.get("authorization", "")
        with self._lock:
            known = auth.startswith("Bearer ") and auth[7:] in self._tokens
        if not known:
            return _json(401, p.unauthenticated())
        return self._answer(recorded, request.path_params["target"], vertex=True)

    async def _token(self, request: Request) -> Response:
        recorded = await self._record(request)
        if recorded.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
        try:
            claims = jwt.decode(recorded.form.get("assertion", ""), certs=self._public_pem, audience=GOOGLE_AUDIENCE)
        except ValueError:
            return _json(400, p.token_error())
        if claims.get("iss") != SA_EMAIL or not claims.get("scope"):
            return _json(400, p.token_error())
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return _json(200, p.token_answer(token, self.token_expires_in))

    def _answer(self, recorded: RecordedRequest, target: str, *, vertex: bool) -> Response:
        model, _, method = target.partition(":")
        if model in _FAILURES:
            status, build = _FAILURES[model]
            return _json(status, build(model))
        if model == "fail-429":
            return _json(429, p.resource_exhausted(self.retry_delay_s))
        body = recorded.json if isinstance(recorded.json, dict) else {}
        unsigned = p.unsigned_function_call(body) if model == "thinking" else None
        if unsigned is not None:  # thinking models want each function call back with its signature
            return _json(400, p.missing_thought_signature(*unsigned))
        if method == "generateContent":
            return _json(200, self._generate(body, model))
        if method == "streamGenerateContent":
            if recorded.query != "alt=sse":
                return _json(400, p.invalid_argument("this fake streams only with alt=sse"))
            return StreamingResponse(_events(self._stream_events(body, model)), media_type="text/event-stream")
        if method == "batchEmbedContents" and not vertex:
            return self._batch_embed(body)
        if method == "predict" and vertex:
            texts = [str(i.get("content", "")) for i in body.get("instances") or ()]
            dims = int((body.get("parameters") or {}).get("outputDimensionality") or p.EMBEDDING_DIMENSIONS)
            return _json(200, p.vertex_predict_embeddings(texts, dims))
        return _json(404, p.error_body(404, "NOT_FOUND", f"Method {method} not found."))

    def _generate(self, body: p.Json, model: str) -> p.Json:
        prompt = p.count_prompt_tokens(body)
        if model == "blocked":
            return p.prompt_blocked(prompt, model)
        if model == "safety":
            return p.safety_stopped(prompt, model)
        function = p.chosen_function(body)
        if function is not None:
            signature = p.thought_signature() if model == "thinking" else None
            return p.function_call_response(model, prompt, *function, signature)
        count = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        return p.text_response(model, prompt, _reply_text(body), count=count, thinking=model == "thinking")

    def _stream_events(self, body: p.Json, model: str) -> list[p.Json]:
        prompt = p.count_prompt_tokens(body)
        if model == "blocked":
            return [p.prompt_blocked(prompt, model)]
        if model == "stream-error":
            return [*p.text_stream(model, prompt)[:2], p.unavailable()]
        function = p.chosen_function(body)
        if function is not None:
            return p.function_call_stream(model, prompt, *function)
        return p.text_stream(model, prompt, thinking=model == "thinking")

    def _batch_embed(self, body: p.Json) -> Response:
        requests = body.get("requests") or []
        if not requests:
            return _json(400, p.invalid_argument("* BatchEmbedContentsRequest.requests: at least one is required"))
        dims = int(requests[0].get("outputDimensionality") or p.EMBEDDING_DIMENSIONS)
        return _json(200, p.batch_embed_contents(len(requests), dims))


def _reply_text(body: p.Json) -> str:
    images = p.inline_data(body)
    if not images:
        return p.REPLY_TEXT
    seen = ", ".join(f"{i['mimeType']} of {len(base64.b64decode(i['data']))} bytes" for i in images)
    return f"I see {len(images)} inline file(s): {seen}."


async def _events(events: list[p.Json]) -> AsyncIterator[bytes]:
    for event in events:
        yield p.sse(event)


def _json(status: int, body: p.Json) -> JSONResponse:
    return JSONResponse(body, status_code=status)
