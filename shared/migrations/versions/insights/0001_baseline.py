"""Baseline of the insights service's database: its event store (which stays empty: insights only subscribes),
its copy of the catalogue and its rows (bookings, visits, counter sessions), frozen (generated from its metadata
by Alembic's autogenerate, then written out; never edited). 0002 and 0003 bring its store to the others'.

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
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=False),
    sa.Column('booked_at', sa.DateTime(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('moves', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('reference')
    )
    op.create_index('ix_insights_bookings_day', 'bookings', ['day', 'branch'], unique=False)
    op.create_table('counter_sessions',
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('counter', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('services', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('branch', 'day', 'counter', 'opened_at')
    )
    op.create_table('visits',
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('on_time', sa.Boolean(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(), nullable=False),
    sa.Column('first_called_at', sa.DateTime(), nullable=True),
    sa.Column('served_at', sa.DateTime(), nullable=True),
    sa.Column('wait_seconds', sa.Integer(), nullable=True),
    sa.Column('service_seconds', sa.Integer(), nullable=True),
    sa.Column('no_show', sa.Boolean(), nullable=False),
    sa.Column('abandoned', sa.Boolean(), nullable=False),
    sa.Column('recalls', sa.Integer(), nullable=False),
    sa.Column('transferred', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('has_comment', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id')
    )
    op.create_index('ix_insights_visits_day', 'visits', ['day', 'branch'], unique=False)


def downgrade() -> None:
    for name in ('visits', 'counter_sessions', 'bookings'):
        op.drop_table(name)  # their indexes go with them
    steps.drop_catalogue_tables()
    steps.drop_store_tables()
