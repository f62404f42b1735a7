"""Discussion on a request: comments (on the request, a row or a cell), changes requested, and
corrected files as revisions of the same request.

- change_requests.status widened to 20 characters (`changes_requested`).
- change_requests.revision: 1, then 2, 3, … for each corrected file.
- request_comments: the thread (edits keep the replaced text in `previous`, deletions keep the row).
- request_revisions: who uploaded each corrected file, when, its base version and counts.
- revision_rows: the staged rows of a revision a later one replaced ("changed since revision N").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 07:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

KEY = sa.Text().with_variant(sa.Text(collation='C'), 'postgresql')


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) has these already.
    if sa.inspect(op.get_bind()).has_table('request_comments'):
        return
    with op.batch_alter_table('change_requests') as batch:
        batch.alter_column('status', existing_type=sa.String(length=16), type_=sa.String(length=20),
                           existing_nullable=False)
        batch.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default=sa.text('1')))
    op.create_table(
        'request_comments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('user', sa.String(length=150), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('key', KEY, nullable=True),
        sa.Column('column', sa.String(length=200), nullable=True),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('edited_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('previous', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_request_comments_change_key', 'request_comments', ['change_id', 'key'], unique=False)
    op.create_table(
        'request_revisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('user', sa.String(length=150), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('base_version', sa.Integer(), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_request_revisions_change_id'), 'request_revisions', ['change_id'], unique=False)
    op.create_table(
        'revision_rows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('change_id', sa.Integer(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=8), nullable=False),
        sa.Column('key', KEY, nullable=False),
        sa.Column('before', sa.Text(), nullable=True),
        sa.Column('after', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_revision_rows_change_revision', 'revision_rows', ['change_id', 'revision'], unique=False)


def downgrade():
    """Requests sent back become pending again (the old status column is 16 characters)."""
    op.drop_index('ix_revision_rows_change_revision', table_name='revision_rows')
    op.drop_table('revision_rows')
    op.drop_index(op.f('ix_request_revisions_change_id'), table_name='request_revisions')
    op.drop_table('request_revisions')
    op.drop_index('ix_request_comments_change_key', table_name='request_comments')
    op.drop_table('request_comments')
    op.execute("UPDATE change_requests SET status = 'pending' WHERE status = 'changes_requested'")
    with op.batch_alter_table('change_requests') as batch:
        batch.drop_column('revision')
        batch.alter_column('status', existing_type=sa.String(length=20), type_=sa.String(length=16),
                           existing_nullable=False)
