"""Events name their actor: the `actor` column, for a log older than it (see steps.add_actor_column).

Revision ID: 0002
Revises: 0001
"""
from shared.migrations import steps

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    steps.add_actor_column()


def downgrade() -> None:
    pass  # the column is part of the baseline too: a log that gained it here keeps it
