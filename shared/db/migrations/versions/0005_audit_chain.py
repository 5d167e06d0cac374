"""Audit log hash chain: each row's stream sequence, the hash of the previous row of its
org (in stream order) and its own hash (services/accounting/audit_chain.py).

Revision ID: 0005_audit_chain
Revises: 0004 (tenancy)
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_audit_chain"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("stream_seq", sa.BigInteger))
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64)))
    op.add_column("audit_log", sa.Column("hash", sa.String(64)))
    op.create_index("audit_log_org_seq", "audit_log", ["org_id", "stream_seq"])


def downgrade() -> None:
    op.drop_index("audit_log_org_seq", "audit_log")
    op.drop_column("audit_log", "hash")
    op.drop_column("audit_log", "prev_hash")
    op.drop_column("audit_log", "stream_seq")
