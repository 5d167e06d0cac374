"""Keys, spend ledger, audit log.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 10)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(100), nullable=False, server_default="default"),
        sa.Column("team_id", sa.String(100)),
        sa.Column("models", ARRAY(sa.String)),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("spend", MONEY, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "spend_ledger",
        sa.Column("event_id", sa.String(40), primary_key=True),
        sa.Column("request_id", sa.String(64)),
        sa.Column("org_id", sa.String(100), nullable=False),
        sa.Column("team_id", sa.String(100)),
        sa.Column("key_id", sa.String(40)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(200)),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("spend_ledger_key_time", "spend_ledger", ["key_id", "time"])
    op.create_table(
        "audit_log",
        sa.Column("event_id", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("org_id", sa.String(100), nullable=False),
        sa.Column("team_id", sa.String(100)),
        sa.Column("key_id", sa.String(40)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("data", JSONB, nullable=False),
    )
    op.create_index("audit_log_request", "audit_log", ["request_id"])
    op.create_index("audit_log_org_time", "audit_log", ["org_id", "time"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("spend_ledger")
    op.drop_table("api_keys")
