"""Real servers for the backend tests: the PostgreSQL server that `.ci/services.sh` installs and starts, found by URL
or on this machine, with a fresh schema per test; S3 on loopback comes from `leptonhub.platform.storage.local_s3`."""
import os, secrets, shutil, subprocess
from contextlib import contextmanager
from functools import cache
import sqlalchemy as sa

ENV_POSTGRES = 'LEPTONHUB_TEST_POSTGRES'
SERVICES_URL = 'postgresql+psycopg://leptonhub:leptonhub@127.0.0.1:{port}/leptonhub_test'  # what .ci/services.sh creates
S3_CREDENTIALS = {'AWS_ACCESS_KEY_ID': 'local', 'AWS_SECRET_ACCESS_KEY': 'local', 'AWS_DEFAULT_REGION': 'us-east-1'}

def local_clusters() -> list[int]:
    "Ports of the PostgreSQL clusters online on this machine, from Debian's `pg_lsclusters`."
    if not shutil.which('pg_lsclusters'): return []
    out = subprocess.run(['pg_lsclusters', '-h'], capture_output=True, text=True).stdout
    return [int(f[2]) for f in map(str.split, out.splitlines()) if len(f) > 3 and f[3] == 'online']

def _answers(url:str) -> str|None:
    "None if the server at `url` answers a query, else why not."
    engine = sa.create_engine(url, connect_args={'connect_timeout': 5})
    try:
        with engine.connect() as c: c.exec_driver_sql('SELECT 1')
    except Exception as e: return f'{sa.make_url(url).render_as_string(hide_password=True)}: {str(e).splitlines()[0]}'
    finally: engine.dispose()

@cache
def postgres_url() -> str:
    "The test server's URL: `$LEPTONHUB_TEST_POSTGRES`, else the local cluster `.ci/services.sh` set up; `RuntimeError` saying how to get one."
    urls = [os.environ[ENV_POSTGRES]] if os.environ.get(ENV_POSTGRES) else [SERVICES_URL.format(port=p) for p in local_clusters()]
    problems = []
    for url in urls:
        if (why := _answers(url)) is None: return url
        problems.append(why)
    found = '; '.join(problems) if problems else f'${ENV_POSTGRES} is not set and no PostgreSQL cluster is online here'
    raise RuntimeError(f'the backend tests need a PostgreSQL server ({found}): run `sh .ci/services.sh` as root '
                       f'(it installs and starts one) and export {ENV_POSTGRES}=<the URL it prints>')

@contextmanager
def postgres_schema(url:str):
    "A fresh, empty schema on the server at `url`, as a URL whose connections work in it; dropped with its tables afterwards."
    name = f'lh_{secrets.token_hex(6)}'
    admin = sa.create_engine(url, isolation_level='AUTOCOMMIT')
    with admin.connect() as c: c.exec_driver_sql(f'CREATE SCHEMA {name}')
    try: yield sa.make_url(url).update_query_dict({'options': f'-csearch_path={name}'}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c: c.exec_driver_sql(f'DROP SCHEMA {name} CASCADE')
        admin.dispose()
