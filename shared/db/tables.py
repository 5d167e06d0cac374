"""Postgres tables (SQLAlchemy Core). Schema changes go through Alembic migrations."""
from __future__ import annotations

from sqlalchemy import (
                        JSON,
                        BigInteger,
                        Boolean,
                        Column,
                        DateTime,
                        Integer,
                        MetaData,
                        Numeric,
                        String,
                        Table,
                        func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

MONEY = Numeric(20, 10)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("org_id", String(100), nullable=False, server_default="default"),
    Column("team_id", String(100)),
    Column("models", ARRAY(String)),
    Column("is_admin", Boolean, nullable=False, server_default="false"),
    Column("spend", MONEY, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

spend_ledger = Table(
    "spend_ledger", metadata,
    Column("event_id", String(40), primary_key=True),
    Column("request_id", String(64)),
    Column("org_id", String(100), nullable=False),
    Column("team_id", String(100)),
    Column("key_id", String(40)),
    Column("model", String(200), nullable=False),
    Column("provider", String(200)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost", MONEY, nullable=False),
    Column("status", String(20), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
)

# the status the client saw of a call the ingress ended itself (`usage.corrected`): it wins
# over the status of the call's ledger row, whichever is written first
usage_corrections = Table(
    "usage_corrections", metadata,
    Column("call_id", String(40), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("error_code", String(64)),
    Column("time", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("event_id", String(40), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("source", String(40), nullable=False),
    Column("org_id", String(100), nullable=False),
    Column("team_id", String(100)),
    Column("key_id", String(40)),
    Column("request_id", String(64)),
    Column("data", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    # the hash chain per org, in stream order (services/accounting/audit_chain.py)
    Column("stream_seq", BigInteger),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
)

# Responses API answers kept for `GET /v1/responses/{id}` and `previous_response_id`, per org
responses = Table(
    "responses", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(100), nullable=False),
    Column("key_id", String(40)),
    Column("model", String(200), nullable=False),
    Column("response", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    # the conversation without `instructions`, the answer included: the next turn's history
    Column("messages", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
