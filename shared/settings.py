"""Process settings, from environment variables (JETGATE_*).

Every service reads the same settings. When a server URL is set, that server is used;
`jetgate up` starts embedded servers only for the URLs that are not set, and hands the
resulting URLs to its children through the same variables.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JETGATE_", env_nested_delimiter="__", extra="ignore")

    home: Path = Path(".jetgate")
    config: Path = Path("jetgate.yaml")

    nats_url: str | None = None
    database_url: str | None = None
    clickhouse_url: str | None = None
    master_key: SecretStr | None = None
    # JetStream replicas for the gateway's streams: 1 on one machine, 3 on a 3-node cluster
    stream_replicas: int = 1

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 4 * 1024 * 1024
    log_level: str = "INFO"

    # Seconds an ingress keeps a verified key before asking Postgres again. Revocations
    # are pushed over NATS, so this only bounds staleness when a replica was cut off.
    key_cache_ttl_s: float = 60.0
    # Upper bound for one worker call (guardrails, router) from the ingress.
    worker_timeout_s: float = 120.0
    # Silence allowed between two stream frames before the ingress gives up.
    stream_idle_timeout_s: float = 60.0

    # accounting
    usage_batch_size: int = 500
    usage_batch_wait_s: float = 0.5

    def require(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise RuntimeError(f"JETGATE_{name.upper()} is not set")
        return value


def load_settings() -> Settings:
    return Settings()
