"""The catalog and the blob store on every backend, against real servers: a hub end to end on SQLite or PostgreSQL
and a folder or S3; concurrent budget charges, publishes and lock waits on both databases; schema migrations,
including hubs made before migrations existed, upgraded in place.

PostgreSQL is the server `.ci/services.sh` starts (`$LEPTONHUB_TEST_POSTGRES`, or found on this machine); these tests
fail, never skip, without it. S3 is an in-memory S3-compatible server on loopback (`local_s3`)."""
import shutil, threading
from pathlib import Path
import numpy as np, pandas as pd, pytest, sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from leptonhub.core import AccessDenied, ConflictError, ConfigError
from leptonhub.platform.catalog import Base, Catalog, HEAD, alembic_config, copy_catalog, Principal
from leptonhub.platform.hub import Hub
from leptonhub.platform.storage import BlobStore, copy_blobs, local_s3
from leptonhub.privacy.dp import BudgetExceeded
from services import S3_CREDENTIALS, postgres_schema, postgres_url

ENV = ('LEPTONHUB_TOKEN', 'LEPTONHUB_PASSPHRASE', 'LEPTONHUB_CATALOG_URL', 'LEPTONHUB_STORAGE_URL', 'LEPTONHUB_S3_ENDPOINT', 'LEPTONHUB_COMPUTE')

@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    "Nothing from the caller's environment decides a backend here; S3 gets the local server's credentials."
    for k in ENV: monkeypatch.delenv(k, raising=False)
    for k, v in S3_CREDENTIALS.items(): monkeypatch.setenv(k, v)

@pytest.fixture(scope='module')
def pg():
    "The PostgreSQL server's URL; a clear failure when there is none."
    try: return postgres_url()
    except RuntimeError as e: pytest.fail(str(e))

@pytest.fixture(scope='module')
def s3():
    "An S3-compatible server on loopback for this module: its endpoint URL."
    with local_s3() as endpoint: yield endpoint

@pytest.fixture
def catalog_url(request, tmp_path):
    "A fresh catalog URL on the database named by the test's parameter: a file for SQLite, a schema for PostgreSQL."
    if request.param == 'sqlite': yield f"sqlite:///{tmp_path/'catalog.db'}"
    else:
        with postgres_schema(request.getfixturevalue('pg')) as url: yield url

def census(n:int=400, seed:int=0) -> pd.DataFrame:
    "Adult-like records: age, sex, zip, education, hours per week, income."
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'age': rng.integers(17, 90, n), 'sex': rng.choice(['F', 'M'], n), 'zip': rng.choice(['02139', '02141', '10001', '94110'], n),
                         'education': rng.choice(['HS-grad', 'Bachelors', 'Masters', 'Doctorate'], n, p=[.5, .3, .15, .05]),
                         'hours': rng.integers(10, 70, n), 'income': rng.lognormal(10.5, .6, n).round(0)})

def test_postgres_is_available():
    "The server the suite runs against answers (this fails, with what to do, on a machine without one)."
    url = postgres_url()
    with sa.create_engine(url).connect() as c: assert c.exec_driver_sql('SHOW server_version_num').scalar().isdigit()

# ---------------------------------------------------------------- a hub end to end on each pair of backends

@pytest.fixture(params=['sqlite+local', 'postgres+local', 'sqlite+s3', 'postgres+s3'])
def backends(request, tmp_path, monkeypatch):
    "A hub home whose catalog and storage are switched by settings alone: environment variables for local blobs, the hub's config file for S3."
    catalog, storage = request.param.split('+')
    home = tmp_path/'hub'
    home.mkdir()
    with (postgres_schema(request.getfixturevalue('pg')) if catalog == 'postgres' else _nothing()) as pg_url:
        catalog_url = pg_url or f"sqlite:///{home/'catalog.db'}"
        if storage == 's3':
            endpoint = request.getfixturevalue('s3')
            bucket = f'hub-{request.node.callspec.id.replace("+", "-")}'
            monkeypatch.setenv('LEPTONHUB_S3_ENDPOINT', endpoint)
            (home/'config.toml').write_text(f'catalog_url = "{catalog_url}"\nstorage_url = "s3://{bucket}/blobs"\n')
        else: monkeypatch.setenv('LEPTONHUB_CATALOG_URL', catalog_url)
        yield home, catalog, storage

class _nothing:
    def __enter__(self): return None
    def __exit__(self, *exc): return False

def test_hub_end_to_end(backends):
    home, catalog, storage = backends
    hub = Hub.init(home)
    assert hub.catalog.engine.dialect.name == {'sqlite': 'sqlite', 'postgres': 'postgresql'}[catalog] and hub.catalog.revision == HEAD
    assert hub.store.local == (storage == 'local')
    df = census()
    assert hub.publish('census', df, qi=['age', 'sex', 'zip'])['version'] == 1

    g = hub.grant('census', to='lab', purpose='wage study', view='columns', columns=['age', 'hours', 'income'])
    lab = Hub(home, token=g['token'])                       # another opening of the same hub, from its settings alone
    got = lab.read('census', view='columns')
    assert list(got.columns) == ['age', 'hours', 'income'] and len(got) == len(df)
    assert got.income.sum() == df.income.sum() and (got.age.to_numpy() == df.age.to_numpy()).all()

    office = hub.as_principal(hub.grant('census', to='office', purpose='statistics', view='aggregate', epsilon=1.0)['token'])
    assert abs(office.query('census', kind='count', epsilon=0.6)['value'] - len(df)) < 60
    with pytest.raises(BudgetExceeded): office.query('census', kind='count', epsilon=0.6)
    assert office.budget('census')['spent']['epsilon'] == pytest.approx(0.6)

    assert hub.publish('census', census(300, seed=1))['version'] == 2
    assert len(lab.read('census', view='columns', version=1)) == len(df) and len(lab.read('census', view='columns')) == 300
    assert hub.revoke('census', 'lab') == 1
    with pytest.raises(AccessDenied): lab.read('census', view='columns')
    v = hub.verify_audit()
    assert v.ok and v.entries == len(hub.audit())
    assert hub.audit().action.tolist().count('read') == 4   # three served, one refused

    assert (home/'catalog.db').exists() == (catalog == 'sqlite')
    if catalog == 'postgres':
        with sa.create_engine(hub.settings.catalog_url).connect() as c:
            assert c.exec_driver_sql('SELECT count(*) FROM versions').scalar() == 2
    ids = hub.store.ids()
    assert len(ids) == 2 and (home/'blobs').exists() == (storage == 'local')
    if storage == 's3':
        objects = {p.rsplit('/', 1)[-1]: hub.store.fs.cat(p) for p in hub.store.fs.find(hub.settings.storage_url)}
        assert set(objects) == ids and not any(b'PAR1' in b or b'Doctorate' in b for b in objects.values())
    assert Hub(home).read('census', version=1).income.sum() == df.income.sum()

def test_an_embedded_hub_moves_to_postgres_and_s3_and_keeps_everything(tmp_path, pg, s3, monkeypatch):
    home = tmp_path/'hub'
    hub = Hub.init(home)
    df = census()
    hub.publish('census', df)
    lab_token = hub.grant('census', to='lab', purpose='wage study', view='columns', columns=['age', 'income'])['token']
    office_token = hub.grant('census', to='office', purpose='statistics', view='aggregate', epsilon=1.0)['token']
    hub.as_principal(office_token).query('census', kind='count', epsilon=0.4)
    entries = len(hub.audit())
    monkeypatch.setenv('LEPTONHUB_S3_ENDPOINT', s3)
    with postgres_schema(pg) as url:
        counts = copy_catalog(hub.catalog, Catalog(url))
        assert counts['versions'] == 1 and counts['budgets'] == 1 and counts['audit'] == entries
        assert copy_blobs(hub.store, BlobStore('s3://moved-hub/blobs', hub.keyring)) == 1
        (home/'config.toml').write_text(f'catalog_url = "{url}"\nstorage_url = "s3://moved-hub/blobs"\n')
        (home/'catalog.db').unlink(); shutil.rmtree(home/'blobs')

        moved = Hub(home)
        assert moved.catalog.engine.dialect.name == 'postgresql' and not moved.store.local
        assert moved.read('census').income.sum() == df.income.sum() and moved.verify_audit().ok
        assert list(Hub(home, token=lab_token).read('census', view='columns').columns) == ['age', 'income']
        office = Hub(home, token=office_token)
        assert office.budget('census')['spent']['epsilon'] == pytest.approx(0.4)
        with pytest.raises(BudgetExceeded): office.query('census', kind='count', epsilon=0.7)
        after = moved.audit().iloc[entries:]                  # the chain goes on from where it stood
        assert after.action.tolist() == ['read', 'read', 'query'] and after.outcome.tolist() == ['ok', 'ok', 'denied'] and moved.verify_audit().ok

# ---------------------------------------------------------------- writers at once

@pytest.mark.parametrize('catalog_url', ['sqlite', 'postgres'], indirect=True)
def test_concurrent_budget_charges_never_overspend(catalog_url, tmp_path):
    hub = _hub(tmp_path, catalog_url)
    hub.publish('census', census(200))
    g = hub.grant('census', to='office', purpose='statistics', view='aggregate', epsilon=1.0)
    results, start = [], threading.Barrier(8)
    def ask():
        h = Hub(settings=hub.settings, token=g['token'])
        start.wait()
        try: results.append(h.query('census', kind='count', epsilon=0.3)['epsilon'])
        except BudgetExceeded: results.append(None)
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert sorted(results, key=str) == [0.3] * 3 + [None] * 5
    assert hub.as_principal(g['token']).budget('census')['spent']['epsilon'] == pytest.approx(0.9)
    log = hub.audit('census').query("action == 'query'")
    assert sorted(log.outcome) == ['denied'] * 5 + ['ok'] * 3 and hub.verify_audit().ok

@pytest.mark.parametrize('catalog_url', ['sqlite', 'postgres'], indirect=True)
def test_concurrent_publishes_get_distinct_versions(catalog_url, tmp_path):
    hub = _hub(tmp_path, catalog_url)
    versions, start = [], threading.Barrier(4)
    def publish(seed):
        h = Hub(settings=hub.settings)
        start.wait()
        versions.append(h.publish('census', census(100, seed))['version'])
    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert sorted(versions) == [1, 2, 3, 4]
    assert hub.versions('census').version.tolist() == [1, 2, 3, 4] and hub.verify_audit().ok

@pytest.mark.parametrize('catalog_url', ['sqlite', 'postgres'], indirect=True)
def test_a_writer_that_waits_too_long_gets_a_conflict(catalog_url):
    cat, busy = Catalog(catalog_url), Catalog(catalog_url, timeout_s=0.3)
    def add(name):
        with busy.session() as s: s.add(Principal(name=name))
    with cat.session() as s:
        s.add(Principal(name='ann')); s.flush()
        with pytest.raises(ConflictError, match='stayed locked by another writer for 0.3 s'): add('bob')
    add('bob')
    with cat.session() as s: assert sorted(s.scalars(sa.select(Principal.name))) == ['ann', 'bob']
    cat.dispose(); busy.dispose()

def _hub(tmp_path:Path, catalog_url:str) -> Hub:
    "A new hub in `tmp_path` whose catalog is at `catalog_url`."
    from leptonhub.core import get_settings
    return Hub.init(settings=get_settings(tmp_path/'hub', catalog_url=catalog_url))

# ---------------------------------------------------------------- migrations

def _diff(url:str) -> list:
    "What Alembic finds different between the database at `url` and the models."
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c: return compare_metadata(MigrationContext.configure(c), Base.metadata)
    finally: engine.dispose()

@pytest.mark.parametrize('catalog_url', ['sqlite', 'postgres'], indirect=True)
def test_migrations_build_the_models_and_step_both_ways(catalog_url):
    cat = Catalog(catalog_url, migrate=False)
    assert cat.revision is None and cat.migrate('0001') == '0001'
    with cat.session() as s:
        s.execute(sa.text("INSERT INTO principals VALUES ('pr_1', 'ann', 'owner', 'person', '2026-03-01 09:00:00')"))
        s.execute(sa.text("INSERT INTO blobs VALUES ('b1', 'k1', :w, 1000, '2026-03-01 09:00:00')"), {'w': b'\x00'})
    assert cat.migrate() == HEAD and _diff(catalog_url) == []
    with cat.session() as s:           # a blob past 2 GiB fits now (PostgreSQL's INTEGER would refuse it)
        s.execute(sa.text("INSERT INTO blobs VALUES ('b2', 'k1', :w, 3000000000, '2026-03-01 09:00:00')"), {'w': b'\x00'})
        assert s.execute(sa.text('SELECT size FROM blobs ORDER BY id')).scalars().all() == [1000, 3000000000]
        s.execute(sa.text("DELETE FROM blobs WHERE id = 'b2'"))
    indexes = {i['name'] for t in ('grants', 'audit') for i in sa.inspect(cat.engine).get_indexes(t)}
    assert {'ix_grants_principal_dataset', 'ix_grants_dataset', 'ix_audit_dataset'} <= indexes
    with cat.engine.begin() as c: command.downgrade(alembic_config(c), '0001')
    assert cat.revision == '0001' and 'ix_audit_dataset' not in {i['name'] for i in sa.inspect(cat.engine).get_indexes('audit')}
    assert Catalog(catalog_url).revision == HEAD and _diff(catalog_url) == []
    with cat.session() as s: assert s.scalar(sa.select(Principal.name)) == 'ann'
    cat.dispose()

def _make_pre_migration(url:str, dialect:str):
    "Turn the catalog at `url` into what a release before migrations left: no version table, budgets, later columns or indexes."
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for sql in ('DROP TABLE alembic_version', 'DROP TABLE budgets', 'DROP INDEX ix_grants_principal_dataset', 'DROP INDEX ix_grants_dataset',
                    'DROP INDEX ix_audit_dataset', 'ALTER TABLE datasets DROP COLUMN meta', 'ALTER TABLE versions DROP COLUMN score'):
            c.exec_driver_sql(sql)
        if dialect == 'postgres':
            for table, column in (('blobs', 'size'), ('versions', 'rows'), ('audit', 'rows')): c.exec_driver_sql(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE INTEGER')
    engine.dispose()

@pytest.mark.parametrize('catalog_url', ['sqlite', 'postgres'], indirect=True)
def test_a_hub_from_before_migrations_upgrades_in_place(catalog_url, tmp_path, request):
    hub = _hub(tmp_path, catalog_url)
    df = census(250)
    hub.publish('census', df)
    lab_token = hub.grant('census', to='lab', purpose='wage study', view='columns', columns=['age', 'income'])['token']
    hub.catalog.dispose()
    _make_pre_migration(catalog_url, request.node.callspec.params['catalog_url'])
    assert Catalog(catalog_url, migrate=False).revision is None and _diff(catalog_url) != []

    hub = Hub(settings=hub.settings)                                    # opening it migrates it
    assert hub.catalog.revision == HEAD and _diff(catalog_url) == []
    assert hub.read('census').income.sum() == df.income.sum()
    assert list(Hub(settings=hub.settings, token=lab_token).read('census', view='columns').columns) == ['age', 'income']
    assert hub.card('census') is not None and hub.publish('census', census(100, 1))['version'] == 2
    office = hub.as_principal(hub.grant('census', to='office', purpose='statistics', view='aggregate', epsilon=1.0)['token'])
    office.query('census', kind='count', epsilon=0.5)
    assert office.budget('census')['spent']['epsilon'] == pytest.approx(0.5) and hub.verify_audit().ok

def test_a_catalog_from_a_newer_leptonhub_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path/'catalog.db'}"
    Catalog(url).dispose()
    with sa.create_engine(url).begin() as c: c.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(ConfigError, match=f"from schema revision 0099 to {HEAD}.*newer leptonhub"): Catalog(url)

def test_an_unreachable_or_unsupported_catalog_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot open catalog 'postgresql\+psycopg://hub:\*\*\*@127.0.0.1:9/x'"):
        Catalog('postgresql+psycopg://hub:secret@127.0.0.1:9/x')
    with pytest.raises(ConfigError, match='runs on SQLite or PostgreSQL, not mysql'): Catalog('mysql+pymysql://hub:secret@db/x')
