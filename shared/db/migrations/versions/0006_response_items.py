"""Stored responses keep their conversation as Responses API items (`conversation`), which a
provider serving the Responses API itself takes back as input; `messages` (chat messages)
stays for the rows stored before, read as items.

Revision ID: 0006_response_items
Revises: 0005_audit_chain
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_response_items"
down_revision = "0005_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("responses", sa.Column("conversation", JSONB))


def downgrade() -> None:
    op.drop_column("responses", "conversation")
