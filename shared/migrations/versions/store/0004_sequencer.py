"""Positions given after the commit: appends insert their events unsequenced (no lock of the log, so commits
share a flush) and the sequencer (shared.eventstore.Database.sequence, run by the relay) numbers, hashes and
outboxes them; `seq` keeps the insertion order (steps.sequence_after_commit).

Revision ID: 0004
Revises: 0003
"""
from shared.migrations import steps

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    steps.sequence_after_commit()


def downgrade() -> None:
    steps.sequence_at_append()
