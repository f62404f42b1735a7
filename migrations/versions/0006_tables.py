"""Several tables: a state row per table, the table of each row and request, one database version.

- database_state: the version of the whole database (one counter for every table) and the oldest
  version the history keeps, taken over from table_state's only row.
- table_state.name: which table of schema.json the row describes (start-up names row 1 after the
  first table, so an existing table stays the first table).
- datasets.tbl, part of the primary key (tbl, key); change_requests.tbl: the table a request
  changes. Existing rows and requests belong to table 1.
- change_requests.batch: an upload spanning tables is a request per table, decided together;
  each holds the id of the first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 04:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # A database that bootstrap stamped as 0001 (made by db.create_all()) may have these already.
    if sa.inspect(op.get_bind()).has_table('database_state'):
        return
    op.create_table(
        'database_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('history_from', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute(
        "INSERT INTO database_state (id, version, history_from)"
        " SELECT 1, version, history_from FROM table_state WHERE id = 1"
    )
    with op.batch_alter_table('table_state') as batch:
        batch.add_column(sa.Column('name', sa.String(length=63), nullable=True))
        batch.create_unique_constraint('uq_table_state_name', ['name'])
    op.add_column('change_requests', sa.Column('tbl', sa.Integer(), nullable=False, server_default=sa.text('1')))
    op.add_column('change_requests', sa.Column('batch', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_change_requests_batch'), 'change_requests', ['batch'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.add_column('datasets', sa.Column('tbl', sa.Integer(), nullable=False, server_default=sa.text('1')))
        op.execute('ALTER TABLE datasets DROP CONSTRAINT datasets_pkey')
        op.execute('ALTER TABLE datasets ADD PRIMARY KEY (tbl, key)')
    else:  # SQLite cannot change a primary key in place: the table is copied
        op.create_table(
            'datasets_new',
            sa.Column('tbl', sa.Integer(), nullable=False, server_default=sa.text('1')),
            sa.Column('key', sa.Text(), nullable=False),
            sa.Column('record', sa.Text(), nullable=False),
            sa.Column('version', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('tbl', 'key'),
        )
        op.execute('INSERT INTO datasets_new (tbl, key, record, version) SELECT 1, key, record, version FROM datasets')
        op.drop_table('datasets')
        op.rename_table('datasets_new', 'datasets')


def downgrade():
    """Back to one table: the first table's rows stay, the rows of every other table are deleted."""
    op.execute('DELETE FROM datasets WHERE tbl <> 1')
    op.execute('DELETE FROM table_state WHERE id <> 1')
    op.execute(
        'UPDATE table_state SET version = (SELECT version FROM database_state WHERE id = 1),'
        ' history_from = (SELECT history_from FROM database_state WHERE id = 1)'
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE datasets DROP CONSTRAINT datasets_pkey')
        op.execute('ALTER TABLE datasets ADD PRIMARY KEY (key)')
        op.drop_column('datasets', 'tbl')
    else:
        op.create_table(
            'datasets_old',
            sa.Column('key', sa.Text(), nullable=False),
            sa.Column('record', sa.Text(), nullable=False),
            sa.Column('version', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('key'),
        )
        op.execute('INSERT INTO datasets_old (key, record, version) SELECT key, record, version FROM datasets')
        op.drop_table('datasets')
        op.rename_table('datasets_old', 'datasets')
    with op.batch_alter_table('change_requests') as batch:
        batch.drop_index(batch.f('ix_change_requests_batch'))
        batch.drop_column('batch')
        batch.drop_column('tbl')
    with op.batch_alter_table('table_state') as batch:
        batch.drop_constraint('uq_table_state_name', type_='unique')
        batch.drop_column('name')
    op.drop_table('database_state')
