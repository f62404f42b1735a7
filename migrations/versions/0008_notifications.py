"""Notifications: people's e-mail addresses and subscriptions, webhooks, and the outbox.

- users.email: where a person's notifications go (none: they get none).
- users.notify: JSON of what they switched off, the tables they watch, and the daily digest.
- webhooks: receivers of signed event messages (URL, secret, event types, table).
- outbox: every message to deliver, written in the same transaction as the change it reports.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06 06:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have these already.
    if sa.inspect(op.get_bind()).has_table('outbox'):
        return
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('notify', sa.Text(), server_default='{}', nullable=False))
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('events', sa.Text(), nullable=False),
    sa.Column('table_name', sa.String(length=63), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=True),
    sa.Column('webhook_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('username', sa.String(length=150), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_change_id'), ['change_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_webhook_id'), ['webhook_id'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_webhook_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_change_id'))
        batch_op.drop_index('ix_outbox_due')
    op.drop_table('outbox')
    op.drop_table('webhooks')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('notify')
        batch_op.drop_column('email')
