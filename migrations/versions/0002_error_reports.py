"""Error reports: a refused upload with an `errors` column, kept a day for its owner to download.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have the table already.
    if sa.inspect(op.get_bind()).has_table('error_reports'):
        return
    op.create_table('error_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=150), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_error_reports_created_at'), 'error_reports', ['created_at'], unique=False)
    op.create_index(op.f('ix_error_reports_owner'), 'error_reports', ['owner'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_error_reports_owner'), table_name='error_reports')
    op.drop_index(op.f('ix_error_reports_created_at'), table_name='error_reports')
    op.drop_table('error_reports')
