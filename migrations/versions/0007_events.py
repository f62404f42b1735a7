"""Approval a company can rely on, and a tamper-evident event log.

- approvals: each person's approval of a request (quorum), its reason and electronic signature,
  dismissed when the request's staged rows change.
- events: the append-only event log, each event's hash chained to the previous one.
- change_sets: the SHA-256 of a request's staged rows, computed at staging, forgotten when they change.
- event_chain: the one row at the head of the chain (last id and hash); writers lock it first.
- On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on events: the app never changes an
  event, and neither may anyone else without first dropping the trigger (which needs the owner).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

GENESIS = '0' * 64


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have the tables already,
    # but never the chain's head row or the trigger.
    if not sa.inspect(op.get_bind()).has_table('events'):
        _create_tables()
    if op.get_bind().execute(sa.text('SELECT COUNT(*) FROM event_chain')).scalar() == 0:
        op.execute(f"INSERT INTO event_chain (id, last_id, hash) VALUES (1, 0, '{GENESIS}')")
    if op.get_bind().dialect.name == 'postgresql':
        _create_trigger()


def _create_tables():
    op.create_table(
        'approvals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=150), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('meaning', sa.String(length=16), nullable=True),
        sa.Column('digest', sa.String(length=64), nullable=True),
        sa.Column('rule', sa.String(length=16), nullable=False),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('dismissed_at', sa.DateTime(), nullable=True),
        sa.Column('dismissed_why', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_approvals_change_id'), 'approvals', ['change_id'], unique=False)
    op.create_table(
        'change_sets',
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('change_id'),
    )
    op.create_table(
        'events',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('username', sa.String(length=150), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('table_name', sa.String(length=63), nullable=True),
        sa.Column('change_id', sa.Integer(), nullable=True),
        sa.Column('details', sa.Text(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_events_at'), 'events', ['at'], unique=False)
    op.create_index(op.f('ix_events_type'), 'events', ['type'], unique=False)
    op.create_index(op.f('ix_events_username'), 'events', ['username'], unique=False)
    op.create_table(
        'event_chain',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def _create_trigger():
    op.execute(
        """
        CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP;
        END
        $$
        """
    )
    op.execute('DROP TRIGGER IF EXISTS events_append_only ON events')
    op.execute(
        'CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events'
        ' FOR EACH ROW EXECUTE FUNCTION events_append_only()'
    )
    op.execute('DROP TRIGGER IF EXISTS events_no_truncate ON events')
    op.execute(
        'CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events'
        ' FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()'
    )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS events_no_truncate ON events')
        op.execute('DROP TRIGGER IF EXISTS events_append_only ON events')
        op.execute('DROP FUNCTION IF EXISTS events_append_only()')
    op.drop_table('event_chain')
    op.drop_index(op.f('ix_events_username'), table_name='events')
    op.drop_index(op.f('ix_events_type'), table_name='events')
    op.drop_index(op.f('ix_events_at'), table_name='events')
    op.drop_table('events')
    op.drop_table('change_sets')
    op.drop_index(op.f('ix_approvals_change_id'), table_name='approvals')
    op.drop_table('approvals')
