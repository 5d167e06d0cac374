"""Responses API answers, per org (`previous_response_id`, `GET /v1/responses/{id}`).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("org_id", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(40)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("response", JSONB, nullable=False),
        sa.Column("messages", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("responses_org_created", "responses", ["org_id", "created_at"])


def downgrade() -> None:
    op.drop_table("responses")
