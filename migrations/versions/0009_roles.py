"""Sign-in with an identity provider, roles per table, scoped tokens.

- users.oidc_subject: the identity provider's `sub` for the account (users.email, which sign-in
  fills, comes from 0008).
- user_groups: the groups a person belongs to (from the provider's claim, or added by an admin).
- api_tokens.scope (read, submit, decide; existing tokens keep full rights: decide) and
  api_tokens.expires_at (none: never).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 07:15:00.000000
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _columns(table):
    return {c['name'] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade():
    # A database made by db.create_all() and stamped as 0001 may have all of this already.
    users = _columns('users')
    with op.batch_alter_table('users', schema=None) as batch_op:
        if 'oidc_subject' not in users:
            batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
            batch_op.create_unique_constraint('uq_users_oidc_subject', ['oidc_subject'])
    tokens = _columns('api_tokens')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        if 'scope' not in tokens:
            batch_op.add_column(sa.Column('scope', sa.String(length=10), server_default=sa.text("'decide'"), nullable=False))
        if 'expires_at' not in tokens:
            batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
    if not sa.inspect(op.get_bind()).has_table('user_groups'):
        op.create_table(
            'user_groups',
            sa.Column('user_id', sa.Integer(), nullable=False),
            sa.Column('name', sa.String(length=150), nullable=False),
            sa.Column('source', sa.String(length=10), nullable=False),
            sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('user_id', 'name', 'source'),
        )


def downgrade():
    op.drop_table('user_groups')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scope')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_oidc_subject', type_='unique')
        batch_op.drop_column('oidc_subject')
