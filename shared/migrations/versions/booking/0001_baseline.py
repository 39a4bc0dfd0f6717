"""Baseline of the booking service's database: the schema the release before migrations made with create_all, frozen (generated from
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
    op.create_table('bookings',
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('cpr', sa.String(length=9), nullable=False),
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=False),
    sa.Column('end', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('reference')
    )
    op.create_index('ix_bookings_person', 'bookings', ['cpr', 'status'], unique=False)
    op.create_index('ix_bookings_slot', 'bookings', ['branch', 'service', 'start', 'status'], unique=False)
    op.create_table('people',
    sa.Column('cpr', sa.String(length=9), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('cpr')
    )


def downgrade() -> None:
    op.drop_table('people')
    op.drop_table('bookings')  # its indexes go with it
    steps.drop_catalogue_tables()
    steps.drop_store_tables()
