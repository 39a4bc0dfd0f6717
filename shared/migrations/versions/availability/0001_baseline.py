"""Baseline of the availability service's database: the schema the release before migrations made with create_all, frozen (generated from
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
    steps.create_catalogue_tables()
    op.create_table('slot_bookings',
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('branch', 'service', 'start')
    )


def downgrade() -> None:
    op.drop_table('slot_bookings')
    steps.drop_catalogue_tables()
    steps.drop_store_tables()
