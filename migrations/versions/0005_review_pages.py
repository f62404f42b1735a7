"""Review pages: the changed columns of each staged modification and their counts per request;
uploads held while their owner confirms a mass deletion.

- pending_changes.changed: a modification's changed field names (`\x1fowner\x1fname\x1f`), so the
  review page filters by column without unpacking every row.
- change_requests.column_counts: JSON {field: modified rows changing it}, kept whenever the staged
  rows change, so the review page never counts a big request again.
- held_uploads: the file of an upload that must confirm its deletions, kept an hour.

Existing staged modifications get their changed columns and counts here.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 02:00:00.000000
"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SEP = '\x1f'


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have these already.
    if sa.inspect(op.get_bind()).has_table('held_uploads'):
        return
    op.add_column('pending_changes', sa.Column('changed', sa.Text(), nullable=True))
    op.add_column('change_requests', sa.Column('column_counts', sa.Text(), nullable=False, server_default='{}'))
    op.create_table('held_uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=150), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_held_uploads_created_at'), 'held_uploads', ['created_at'], unique=False)
    op.create_index(op.f('ix_held_uploads_owner'), 'held_uploads', ['owner'], unique=False)

    backfill(op.get_bind())


def backfill(bind):
    """The changed columns of every staged modification, and their counts per request."""
    requests = bind.execute(sa.text("SELECT id, fields FROM change_requests")).all()
    for change_id, fields in requests:
        names = json.loads(fields or '[]')
        counts = {}
        updates = []
        rows = bind.execute(
            sa.text("SELECT id, before, after FROM pending_changes WHERE change_id = :id AND action = 'modify'"),
            {'id': change_id},
        ).all()
        for row_id, before, after in rows:
            old, new = (before or '').split(SEP), (after or '').split(SEP)
            changed = [n for n, a, b in zip(names, old, new) if a != b]
            for name in changed:
                counts[name] = counts.get(name, 0) + 1
            updates.append({'id': row_id, 'changed': SEP + SEP.join(changed) + SEP if changed else None})
        if updates:
            bind.execute(sa.text("UPDATE pending_changes SET changed = :changed WHERE id = :id"), updates)
        if counts:
            bind.execute(
                sa.text("UPDATE change_requests SET column_counts = :c WHERE id = :id"),
                {'c': json.dumps(counts), 'id': change_id},
            )


def downgrade():
    op.drop_index(op.f('ix_held_uploads_owner'), table_name='held_uploads')
    op.drop_index(op.f('ix_held_uploads_created_at'), table_name='held_uploads')
    op.drop_table('held_uploads')
    with op.batch_alter_table('change_requests') as batch:
        batch.drop_column('column_counts')
    with op.batch_alter_table('pending_changes') as batch:
        batch.drop_column('changed')
