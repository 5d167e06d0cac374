"""How a Bedrock request is authenticated: SigV4 over the exact bytes sent (botocore's
`SigV4Auth`), or a Bedrock API key as a bearer token. Credentials are resolved once, when
the adapter is built; they only ever go into request headers. botocore is imported by the
first signer that signs: a router without a Bedrock deployment does not load it."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from services.router.providers.bedrock.config import SIGNING_SERVICE, BedrockConfig
from shared.secrets import resolve_secret

if TYPE_CHECKING:
    from botocore.credentials import Credentials


class Signer:
    """Headers for one request: the static ones plus its credentials (`sign` is per request:
    a SigV4 signature covers the method, the URL, the body and the time)."""

    def __init__(self, config: BedrockConfig) -> None:
        self._region = config.region
        self._headers = {"content-type": "application/json", "accept": "application/json", **config.headers}
        token = resolve_secret(config.api_key)
        self._bearer = f"Bearer {token.get_secret_value()}" if token is not None else None
        key_id, secret = resolve_secret(config.access_key_id), resolve_secret(config.secret_access_key)
        session = resolve_secret(config.session_token)
        self._credentials: Credentials | None = None
        if key_id is not None and secret is not None:
            from botocore.credentials import Credentials

            self._credentials = Credentials(key_id.get_secret_value(), secret.get_secret_value(),
                                            session.get_secret_value() if session is not None else None)

    def sign(self, url: str, body: bytes, accept: str = "application/json") -> Mapping[str, str]:
        headers = {**self._headers, "accept": accept}
        if self._bearer is not None:
            return {**headers, "authorization": self._bearer}
        if self._credentials is None:  # the referenced variables are empty: AWS will refuse the call
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(self._credentials, SIGNING_SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())
