"""History from staged rows; three-way merge.

- The staged rows of an approved request are the table's history: the audit log no longer copies
  them. Each approval's per-row audit entries are folded into one `approve` entry that keeps the
  id of the first of them (so the log keeps its order).
- change_requests: base_source, merged_version, conflicts, reverts; an index on applied_version.
- pending_changes: a warning per staged row; the (key, change_id) index serves history by key
  and replaces (change_id, key).
- merge_conflicts: cells (or rows) both sides changed differently.
- table_state.history_from: the oldest version the history can rebuild.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

KEY = sa.Text().with_variant(sa.Text(collation='C'), 'postgresql')
ROW_ACTIONS = "('add', 'modify', 'delete')"


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have these already.
    inspector = sa.inspect(op.get_bind())
    if 'merge_conflicts' in inspector.get_table_names():
        return
    op.add_column('change_requests', sa.Column('base_source', sa.String(length=16), nullable=False, server_default=''))
    op.add_column('change_requests', sa.Column('merged_version', sa.Integer(), nullable=True))
    op.add_column('change_requests', sa.Column('conflicts', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('change_requests', sa.Column('reverts', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_change_requests_applied_version'), 'change_requests', ['applied_version'], unique=False)
    op.execute("UPDATE change_requests SET merged_version = base_version")

    op.add_column('pending_changes', sa.Column('warning', sa.Text(), nullable=True))
    op.drop_index('ix_pending_changes_change_key', table_name='pending_changes')
    op.create_index('ix_pending_changes_key_change', 'pending_changes', ['key', 'change_id'], unique=False)

    op.create_table('merge_conflicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('key', KEY, nullable=False),
    sa.Column('column', sa.String(length=200), nullable=True),
    sa.Column('base', sa.Text(), nullable=True),
    sa.Column('theirs', sa.Text(), nullable=True),
    sa.Column('yours', sa.Text(), nullable=True),
    sa.Column('line', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['change_id'], ['change_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_merge_conflicts_change_key', 'merge_conflicts', ['change_id', 'key'], unique=False)

    op.add_column('table_state', sa.Column('history_from', sa.Integer(), nullable=False, server_default='0'))

    # One approve entry per approval, in place of its per-row entries (the staged rows hold them).
    op.execute(
        "CREATE TEMPORARY TABLE folded_approvals AS"
        " SELECT min(id) AS id, change_id, min(submitter) AS submitter, min(approver) AS approver,"
        " min(submitted_at) AS submitted_at, min(created_at) AS created_at, min(version) AS version"
        f" FROM audit_log WHERE action IN {ROW_ACTIONS} GROUP BY change_id"
    )
    op.execute(f"DELETE FROM audit_log WHERE action IN {ROW_ACTIONS}")
    op.execute(
        "INSERT INTO audit_log (id, change_id, action, submitter, approver, submitted_at, created_at, version)"
        " SELECT id, change_id, 'approve', submitter, approver, submitted_at, created_at, version FROM folded_approvals"
    )
    op.execute("DROP TABLE folded_approvals")


def downgrade():
    # Per-row entries again, from the staged rows of approved requests.
    op.execute(
        "INSERT INTO audit_log"
        " (change_id, action, key, before, after, submitter, approver, submitted_at, created_at, version)"
        " SELECT p.change_id, p.action, p.key, p.before, p.after, a.submitter, a.approver, a.submitted_at,"
        " a.created_at, a.version FROM pending_changes p JOIN audit_log a ON a.change_id = p.change_id"
        " AND a.action = 'approve' ORDER BY a.id, p.id"
    )
    op.execute("DELETE FROM audit_log WHERE action IN ('approve', 'resolve')")
    with op.batch_alter_table('table_state') as batch:
        batch.drop_column('history_from')
    op.drop_index('ix_merge_conflicts_change_key', table_name='merge_conflicts')
    op.drop_table('merge_conflicts')
    op.drop_index('ix_pending_changes_key_change', table_name='pending_changes')
    op.create_index('ix_pending_changes_change_key', 'pending_changes', ['change_id', 'key'], unique=False)
    with op.batch_alter_table('pending_changes') as batch:
        batch.drop_column('warning')
    op.drop_index(op.f('ix_change_requests_applied_version'), table_name='change_requests')
    with op.batch_alter_table('change_requests') as batch:
        batch.drop_column('reverts')
        batch.drop_column('conflicts')
        batch.drop_column('merged_version')
        batch.drop_column('base_source')
