"""Postgres tables (SQLAlchemy Core). Schema changes go through Alembic migrations."""
from __future__ import annotations

from sqlalchemy import (
                        JSON,
                        BigInteger,
                        Column,
                        DateTime,
                        ForeignKey,
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
SLUG_LENGTH = 63


def limit_columns() -> list[Column]:  # type: ignore[type-arg]
    """What every level (org, team, user, key) carries: shared/tenancy.py `Limits`."""
    return [Column("models", ARRAY(String)), Column("rpm_limit", Integer), Column("tpm_limit", Integer),
            Column("max_budget", MONEY), Column("budget_duration", String(8))]


orgs = Table(
    "orgs", metadata,
    Column("id", String(100), primary_key=True),  # a slug (legacy ids from before 0003 may be longer)
    Column("name", String(200), nullable=False),
    *limit_columns(),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
)

teams = Table(
    "teams", metadata,
    Column("id", String(100), primary_key=True),
    Column("org_id", String(100), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    *limit_columns(),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
)

users = Table(
    "users", metadata,
    Column("id", String(100), primary_key=True),
    Column("org_id", String(100), ForeignKey("orgs.id"), nullable=False, index=True),
    Column("team_id", String(100), ForeignKey("teams.id")),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("role", String(20), nullable=False, server_default="member"),
    *limit_columns(),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("org_id", String(100), nullable=False, server_default="default"),
    Column("team_id", String(100)),
    Column("user_id", String(100), ForeignKey("users.id")),
    *limit_columns(),
    Column("role", String(20)),  # shared/tenancy.py Role; None: no admin permissions
    Column("scopes", ARRAY(String)),  # None: the scopes its role gives (shared/tenancy.py)
    Column("allowed_ips", ARRAY(String)),  # CIDRs; None: any address
    Column("spend", MONEY, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    # rotation: the secret before the last rotation stays valid until previous_expires_at
    Column("previous_key_hash", String(64), index=True),
    Column("previous_expires_at", DateTime(timezone=True)),
    Column("rotated_at", DateTime(timezone=True)),
)

spend_ledger = Table(
    "spend_ledger", metadata,
    Column("event_id", String(40), primary_key=True),
    Column("request_id", String(64)),
    Column("org_id", String(100), nullable=False),
    Column("team_id", String(100)),
    Column("key_id", String(40)),
    Column("user_id", String(100)),
    Column("model", String(200), nullable=False),
    Column("provider", String(200)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    # parts of the counts above the upstream reported (migration 0007): cache reads, writes, reasoning
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("cache_write_tokens", Integer, nullable=False, server_default="0"),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
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
    # the conversation without `instructions`, the answer included, as Responses API items:
    # the next turn's history (services/ingress/responses_api/conversation.py)
    Column("conversation", JSON().with_variant(JSONB, "postgresql")),
    # rows from before 0006 hold it as chat messages here instead (newer ones: [])
    Column("messages", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
