"""The spend ledger keeps the parts of a call's token counts the upstream reported: prompt
tokens read from its cache and written to it, completion tokens spent reasoning (0 for the
rows stored before, as for calls whose upstream reports none).

Revision ID: 0007_ledger_token_details
Revises: 0006_response_items
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_ledger_token_details"
down_revision = "0006_response_items"
branch_labels = None
depends_on = None

COLUMNS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("spend_ledger", sa.Column(name, sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("spend_ledger", name)
