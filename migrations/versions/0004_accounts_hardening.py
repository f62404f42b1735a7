"""Accounts hardening: sessions that end (a session generation per account), disabled accounts,
accounts made by the trusted proxy header marked, and staged rows of old decided requests purged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


NEW_COLUMNS = {
    'users': [
        sa.Column('session_generation', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('disabled_at', sa.DateTime(), nullable=True),
        sa.Column('created_by_proxy', sa.Boolean(), server_default=sa.false(), nullable=False),
    ],
    'change_requests': [
        sa.Column('rows_purged_at', sa.DateTime(), nullable=True),
    ],
}


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have the columns already.
    inspector = sa.inspect(op.get_bind())
    for table, columns in NEW_COLUMNS.items():
        existing = {c['name'] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in existing]
        if missing:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column in missing:
                    batch_op.add_column(column)


def downgrade():
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.drop_column('rows_purged_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('created_by_proxy')
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('session_generation')
