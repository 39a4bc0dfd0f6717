"""Baseline of the event store's tables alone: the database of no service (tests' own tables, tools'): the schema the release before migrations made with create_all, frozen (generated from
its metadata by Alembic's autogenerate, then written out; never edited). A database made by that release has no
version table: shared.migrations stamps it at this revision before upgrading it.

Revision ID: 0001
"""
from alembic import op
import sqlalchemy as sa

from shared.migrations import steps

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    steps.create_store_tables()


def downgrade() -> None:
    steps.drop_store_tables()
