"""Config of an AWS Bedrock provider: a region and its credentials, either an IAM access key
(requests signed with SigV4) or a Bedrock API key (sent as a bearer token). A model's
deployment `model:` is the Bedrock model id or inference profile (`anthropic.claude-…`,
`us.meta.llama…`, an ARN)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from services.router.providers.base import ProviderConfig
from shared.secrets import SecretRef

SIGNING_SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime


class BedrockConfig(ProviderConfig):
    type: Literal["bedrock"] = "bedrock"
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")  # e.g. us-east-1
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    session_token: SecretRef | None = None  # temporary credentials (STS) only
    api_key: SecretRef | None = None  # a Bedrock API key, sent as `Authorization: Bearer`
    endpoint_url: str | None = None  # https://bedrock-runtime.{region}.amazonaws.com; a VPC endpoint, or a test server
    timeout_s: float = 600.0  # reasoning models think for minutes before the first token
    connect_timeout_s: float = 5.0
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_credential(self) -> BedrockConfig:
        iam = self.access_key_id is not None or self.secret_access_key is not None
        if iam and (self.access_key_id is None or self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key")
        if iam == (self.api_key is not None):
            raise ValueError("give exactly one credential: access_key_id with secret_access_key, or api_key")
        if self.session_token is not None and not iam:
            raise ValueError("session_token goes with access_key_id and secret_access_key")
        return self

    def base_url(self) -> str:
        return (self.endpoint_url or f"https://bedrock-runtime.{self.region}.amazonaws.com").rstrip("/")
