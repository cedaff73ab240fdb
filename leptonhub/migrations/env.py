"""Alembic environment of the leptonhub catalog.

`Catalog.migrate` (leptonhub.platform.catalog) runs the migrations on the connection it hands over in
`config.attributes['connection']`; the `alembic` command (with `script_location` pointing at this
folder) uses `sqlalchemy.url` from its configuration, else the hub's settings (`$LEPTONHUB_CATALOG_URL`,
the hub's config file, or its SQLite file), and `--sql` writes the SQL for a database administrator instead.
"""
from alembic import context
from leptonhub.core import get_settings
from leptonhub.platform.catalog import Base, Catalog

config = context.config

def _url() -> str: return config.get_main_option('sqlalchemy.url') or get_settings().catalog_url

def _run(conn):
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=conn.dialect.name == 'sqlite')
    with context.begin_transaction(): context.run_migrations()

if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction(): context.run_migrations()
elif (conn := config.attributes.get('connection')) is not None: _run(conn)
else:
    catalog = Catalog(_url(), migrate=False)     # its engine takes the catalog's lock, as every writer does
    try:
        with catalog.engine.connect() as conn: _run(conn); conn.commit()
    finally: catalog.dispose()
