"""Ready for a shared server: 64-bit blob sizes and row counts (PostgreSQL's INTEGER stops at 2 GiB; SQLite's is 64-bit already), and indexes on the lookups every read makes (a principal's grants on a dataset, a dataset's grants, a dataset's audit entries).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

WIDENED = (('blobs', 'size'), ('versions', 'rows'), ('audit', 'rows'))
INDEXES = (('ix_grants_principal_dataset', 'grants', ['principal_id', 'dataset_id']),
           ('ix_grants_dataset', 'grants', ['dataset_id']),
           ('ix_audit_dataset', 'audit', ['dataset']))

def _widen(old, new):
    if op.get_bind().dialect.name == 'sqlite': return
    for table, column in WIDENED: op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=False)

def upgrade():
    _widen(sa.Integer(), sa.BigInteger())
    for name, table, columns in INDEXES: op.create_index(name, table, columns)

def downgrade():
    for name, table, _ in INDEXES: op.drop_index(name, table_name=table)
    _widen(sa.BigInteger(), sa.Integer())
