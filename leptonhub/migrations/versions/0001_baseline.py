"""The catalog as it stood when migrations began: principals, tokens, datasets, blobs, versions, grants, budgets, the audit chain and its head, and the hub's facts.

A catalog created before migrations existed has tables but no `alembic_version`. Upgrading it runs this revision
too, which then creates only the tables it lacks and adds the columns that earlier releases did not have yet
(`datasets.meta`, `versions.score`), so such a hub is brought to this shape in place, its rows kept.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
from alembic import context, op
import sqlalchemy as sa

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

def _tables():
    "The tables of this revision, parents before children."
    return {
    'audit': (
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor', sa.String(), nullable=False),
        sa.Column('action', sa.String(), nullable=False),
        sa.Column('dataset', sa.String(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('view', sa.String(), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(), nullable=False),
        sa.Column('purpose', sa.String(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('prev', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq')),
    'audit_head': (
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id')),
    'blobs': (
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('kid', sa.String(length=40), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id')),
    'meta': (
        sa.Column('key', sa.String(length=60), nullable=False),
        sa.Column('value', sa.String(), nullable=False),
        sa.PrimaryKeyConstraint('key')),
    'principals': (
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name')),
    'datasets': (
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('owner_id', sa.String(length=40), nullable=False),
        sa.Column('description', sa.String(), nullable=False),
        sa.Column('meta', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['principals.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name')),
    'tokens': (
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('principal_id', sa.String(length=40), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['principal_id'], ['principals.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('digest')),
    'grants': (
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('principal_id', sa.String(length=40), nullable=False),
        sa.Column('dataset_id', sa.String(length=40), nullable=False),
        sa.Column('view', sa.String(length=40), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('purpose', sa.String(), nullable=False),
        sa.Column('granted_by', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
        sa.ForeignKeyConstraint(['granted_by'], ['principals.id'], ),
        sa.ForeignKeyConstraint(['principal_id'], ['principals.id'], ),
        sa.PrimaryKeyConstraint('id')),
    'versions': (
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('dataset_id', sa.String(length=40), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('blob_id', sa.String(length=64), nullable=False),
        sa.Column('quarantine_blob_id', sa.String(length=64), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('columns', sa.JSON(), nullable=False),
        sa.Column('schema', sa.JSON(), nullable=False),
        sa.Column('quality', sa.JSON(), nullable=False),
        sa.Column('ledger', sa.JSON(), nullable=False),
        sa.Column('policy', sa.JSON(), nullable=False),
        sa.Column('score', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['blob_id'], ['blobs.id'], ),
        sa.ForeignKeyConstraint(['created_by'], ['principals.id'], ),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
        sa.ForeignKeyConstraint(['quarantine_blob_id'], ['blobs.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('dataset_id', 'number')),
    'budgets': (
        sa.Column('grant_id', sa.String(length=40), nullable=False),
        sa.Column('state', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], ),
        sa.PrimaryKeyConstraint('grant_id')),
    }

LATER_COLUMNS = (('datasets', sa.Column('meta', sa.JSON(), nullable=False, server_default='{}')),
                 ('versions', sa.Column('score', sa.JSON(), nullable=False, server_default='{}')))

def upgrade():
    inspector = None if context.is_offline_mode() else sa.inspect(op.get_bind())   # `--sql` writes a script for an empty database
    have = set(inspector.get_table_names()) if inspector else set()
    for name, columns in _tables().items():
        if name not in have: op.create_table(name, *columns)
    for table, column in LATER_COLUMNS:
        if table in have and column.name not in {c['name'] for c in inspector.get_columns(table)}: op.add_column(table, column)

def downgrade():
    for name in reversed(list(_tables())): op.drop_table(name)
