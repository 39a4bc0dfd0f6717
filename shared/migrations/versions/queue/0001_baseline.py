"""Baseline of the queue service's database: the schema the release before migrations made with create_all, frozen (generated from
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
    op.create_table('appointments',
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('cpr', sa.String(length=9), nullable=False),
    sa.Column('subject', sa.String(length=24), nullable=False),
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.PrimaryKeyConstraint('reference')
    )
    op.create_index('ix_appointments_day', 'appointments', ['branch', 'day', 'status'], unique=False)
    op.create_index(op.f('ix_appointments_subject'), 'appointments', ['subject'], unique=False)
    op.create_table('counters',
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('counter', sa.String(length=16), nullable=False),
    sa.Column('services', sa.Text(), nullable=False),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('serving', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('branch', 'day', 'counter')
    )
    op.create_table('days',
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('appointments_since_walk_in', sa.Integer(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('branch', 'day')
    )
    op.create_table('tickets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=8), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('checked_in_for', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=True),
    sa.Column('cpr', sa.String(length=9), nullable=False),
    sa.Column('subject', sa.String(length=24), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('on_time', sa.Boolean(), nullable=False),
    sa.Column('appointment_start', sa.DateTime(), nullable=True),
    sa.Column('queued_at', sa.DateTime(), nullable=False),
    sa.Column('waiting_since', sa.DateTime(), nullable=True),
    sa.Column('waited_seconds', sa.Integer(), nullable=False),
    sa.Column('counter', sa.String(length=16), nullable=True),
    sa.Column('first_called_at', sa.DateTime(), nullable=True),
    sa.Column('last_called_at', sa.DateTime(), nullable=True),
    sa.Column('recalls', sa.Integer(), nullable=False),
    sa.Column('served_at', sa.DateTime(), nullable=True),
    sa.Column('service_seconds', sa.Integer(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_tickets_day', 'tickets', ['branch', 'day', 'status'], unique=False)
    op.create_index('ix_tickets_reference', 'tickets', ['reference'], unique=False)
    op.create_index(op.f('ix_tickets_subject'), 'tickets', ['subject'], unique=False)


def downgrade() -> None:
    for name in ('tickets', 'days', 'counters', 'appointments'):
        op.drop_table(name)  # their indexes go with them
    steps.drop_catalogue_tables()
    steps.drop_store_tables()
