"""Cancellations that freed a place (services/availability/projection.py `cancelled_places`): a branch's release
delay holds a cancelled place until cancelled_at + delay. Empty at first: `mawaeed replay availability` shows the
rows the log implies (the cancellations before this revision), which a rebuild writes.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cancelled_places',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_cancelled_places_slot', 'cancelled_places', ['branch', 'service', 'start'], unique=False)


def downgrade() -> None:
    op.drop_table('cancelled_places')  # its index goes with it
