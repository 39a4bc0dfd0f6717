"""The hash chain: every event's `hash` (shared.eventstore.chain_hash), back-filled in position order for the
events already there, and appends on PostgreSQL that hash under the log's lock.

Revision ID: 0003
Revises: 0002
"""
from shared.migrations import steps

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    steps.add_hash_chain()


def downgrade() -> None:
    steps.drop_hash_chain()
