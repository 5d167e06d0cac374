"""The client-seen status of calls the ingress ended itself (`usage.corrected`).

Revision ID: 0003_usage_corrections
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_usage_corrections"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_corrections",
        sa.Column("call_id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_corrections")
