"""Baseline of the notifications service's database: the schema the release before migrations made with create_all, frozen (generated from
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
    op.create_table('contacts',
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('cpr', sa.String(length=9), nullable=False),
    sa.Column('subject', sa.String(length=24), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('branch', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('reference')
    )
    op.create_index(op.f('ix_contacts_subject'), 'contacts', ['subject'], unique=False)
    op.create_table('messages',
    sa.Column('key', sa.String(length=180), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=True),
    sa.Column('ticket_id', sa.String(length=36), nullable=True),
    sa.Column('appointment_start', sa.DateTime(), nullable=True),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_messages_due', 'messages', ['status', 'next_attempt_at'], unique=False)
    op.create_table('tickets',
    sa.Column('ticket_id', sa.String(length=36), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=True),
    sa.Column('number', sa.String(length=8), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id')
    )


def downgrade() -> None:
    for name in ('tickets', 'messages', 'contacts'):
        op.drop_table(name)  # their indexes go with them
    steps.drop_catalogue_tables()
    steps.drop_store_tables()
