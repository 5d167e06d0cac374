"""Tenancy: orgs, teams and users; keys with a user, a role, scopes, limits, expiry,
last use, an IP allowlist and rotation; the spend ledger records the user.

Admin keys (`is_admin`) become keys with the `global` role. Every org and team a key named
before becomes an object of its own (the `default` org always exists).

Revision ID: 0004
Revises: 0003_usage_corrections
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0004"
down_revision = "0003_usage_corrections"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 10)


def _limits() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("models", ARRAY(sa.String)), sa.Column("rpm_limit", sa.Integer),
            sa.Column("tpm_limit", sa.Integer), sa.Column("max_budget", MONEY),
            sa.Column("budget_duration", sa.String(8))]


def _times() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
            sa.Column("deleted_at", sa.DateTime(timezone=True))]


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        *_limits(), *_times(),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("org_id", sa.String(100), sa.ForeignKey("orgs.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        *_limits(), *_times(),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("org_id", sa.String(100), sa.ForeignKey("orgs.id"), nullable=False, index=True),
        sa.Column("team_id", sa.String(100), sa.ForeignKey("teams.id")),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("role", sa.String(20), nullable=False, server_default="member"),
        *_limits(), *_times(),
    )
    op.execute("INSERT INTO orgs (id, name) VALUES ('default', 'Default') ON CONFLICT DO NOTHING")
    op.execute("INSERT INTO orgs (id, name) SELECT DISTINCT org_id, org_id FROM api_keys ON CONFLICT DO NOTHING")
    op.execute("INSERT INTO teams (id, org_id, name) SELECT team_id, min(org_id), team_id FROM api_keys "
               "WHERE team_id IS NOT NULL GROUP BY team_id ON CONFLICT DO NOTHING")

    op.add_column("api_keys", sa.Column("user_id", sa.String(100), sa.ForeignKey("users.id")))
    op.add_column("api_keys", sa.Column("rpm_limit", sa.Integer))
    op.add_column("api_keys", sa.Column("tpm_limit", sa.Integer))
    op.add_column("api_keys", sa.Column("max_budget", MONEY))
    op.add_column("api_keys", sa.Column("budget_duration", sa.String(8)))
    op.add_column("api_keys", sa.Column("role", sa.String(20)))
    op.add_column("api_keys", sa.Column("scopes", ARRAY(sa.String)))
    op.add_column("api_keys", sa.Column("allowed_ips", ARRAY(sa.String)))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True)))
    op.add_column("api_keys", sa.Column("previous_key_hash", sa.String(64)))
    op.add_column("api_keys", sa.Column("previous_expires_at", sa.DateTime(timezone=True)))
    op.add_column("api_keys", sa.Column("rotated_at", sa.DateTime(timezone=True)))
    op.create_index("ix_api_keys_previous_key_hash", "api_keys", ["previous_key_hash"])
    op.create_index("api_keys_org", "api_keys", ["org_id"])
    op.execute("UPDATE api_keys SET role = 'global' WHERE is_admin")
    op.drop_column("api_keys", "is_admin")

    op.add_column("spend_ledger", sa.Column("user_id", sa.String(100)))
    op.create_index("spend_ledger_org_time", "spend_ledger", ["org_id", "time"])
    op.create_index("spend_ledger_team_time", "spend_ledger", ["team_id", "time"])
    op.create_index("spend_ledger_user_time", "spend_ledger", ["user_id", "time"])


def downgrade() -> None:
    op.drop_index("spend_ledger_user_time", "spend_ledger")
    op.drop_index("spend_ledger_team_time", "spend_ledger")
    op.drop_index("spend_ledger_org_time", "spend_ledger")
    op.drop_column("spend_ledger", "user_id")
    op.add_column("api_keys", sa.Column("is_admin", sa.Boolean, nullable=False, server_default="false"))
    op.execute("UPDATE api_keys SET is_admin = true WHERE role = 'global'")
    op.drop_index("api_keys_org", "api_keys")
    op.drop_index("ix_api_keys_previous_key_hash", "api_keys")
    for column in ("rotated_at", "previous_expires_at", "previous_key_hash", "last_used_at", "expires_at",
                   "allowed_ips", "scopes", "role", "budget_duration", "max_budget", "tpm_limit", "rpm_limit",
                   "user_id"):
        op.drop_column("api_keys", column)
    op.drop_table("users")
    op.drop_table("teams")
    op.drop_table("orgs")
