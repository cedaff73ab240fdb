"""The `Hub` facade end to end: round trips, no plaintext at rest, the grant/deny matrix, bad input, tampering,
interrupted publishes, key rotation, concurrent publishers and the hub commands of the CLI."""
import json, multiprocessing as mp, os, shutil, sqlite3, struct, subprocess, sys
from datetime import timedelta
from pathlib import Path
import numpy as np, pandas as pd
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

import leptonhub.platform.access as access
from leptonhub.core import AccessDenied, ConfigError, ConflictError, InputError, LeptonError, NotFoundError, utcnow
from leptonhub.privacy.crypto import IntegrityError, Keyring, KeyringError
from leptonhub.platform.catalog import Version, Dataset
from leptonhub.platform.hub import Hub, KEYRING_FILE
from leptonhub.platform.ingest import ingest
from leptonhub.platform.schema import Schema, Field
from leptonhub.platform.storage import BlobStore, frame_bytes

LEPTONHUB = Path(sys.executable).parent/'leptonhub'  # the console script installed beside this Python
PROVENANCE = ['source', 'source_file', 'source_row']
SCHEMA = Schema({'a': Field('int', min=0, max=10**9), 'b': Field('float'),
                 'c': Field('category', values=['x', 'y']), 'note': Field('str')})
UNKNOWN_TOKEN = 'lh_' + 'A' * 43


@pytest.fixture(autouse=True)
def _no_hub_env(monkeypatch):
    "No token, passphrase or URL from the caller's environment may leak into a test."
    for k in ('LEPTONHUB_TOKEN', 'LEPTONHUB_PASSPHRASE', 'LEPTONHUB_CATALOG_URL', 'LEPTONHUB_STORAGE_URL'):
        monkeypatch.delenv(k, raising=False)


def frame(n:int=200, seed:int=0, bad:int=0) -> pd.DataFrame:
    "`n` distinct records (`note` is unique per seed and row); the first `bad` rows get the invalid code `z` in `c`."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'a': rng.integers(0, 1000, n), 'b': rng.random(n).round(6), 'c': rng.choice(['x', 'y'], n),
                       'note': [f'n{seed}-{i}' for i in range(n)]})
    if bad: df.loc[:bad - 1, 'c'] = 'z'
    return df


def valid_part(df:pd.DataFrame) -> pd.DataFrame: return df[df.c.isin(['x', 'y'])]


def assert_same_records(out:pd.DataFrame, src:pd.DataFrame, source:str='gen'):
    "`out` (a read) holds exactly the records of `src`, in order, with provenance `source`, `<dataframe>`, row 1.. of `src`."
    assert list(out.columns) == ['a', 'b', 'c', 'note'] + PROVENANCE
    assert len(out) == len(src)
    np.testing.assert_array_equal(out['a'].to_numpy(), src['a'].to_numpy().astype(float))
    np.testing.assert_array_equal(out['b'].to_numpy(), src['b'].to_numpy())
    assert out['c'].astype(str).tolist() == src['c'].tolist()
    assert out['note'].tolist() == src['note'].tolist()
    assert out['source'].astype(str).tolist() == [source] * len(src)
    assert out['source_file'].astype(str).tolist() == ['<dataframe>'] * len(src)
    assert out['source_row'].tolist() == [int(i) + 1 for i in src.index]


def blob_files(home:Path) -> list[Path]:
    return sorted(p for p in (Path(home)/'blobs').rglob('*') if p.is_file())


def version_blobs(hub:Hub, name:str, number:int) -> tuple[str, str|None]:
    "(data blob id, quarantine blob id) of version `number` of `name`."
    with hub.catalog.session() as s:
        ds = s.scalar(sa.select(Dataset).where(Dataset.name == name))
        v = s.scalar(sa.select(Version).where(Version.dataset_id == ds.id, Version.number == number))
        return v.blob_id, v.quarantine_blob_id


def blob_path(home:Path, blob_id:str) -> Path: return Path(home)/'blobs'/blob_id[:2]/blob_id


def cli(home, *args, token:str|None=None, passphrase:str|None=None) -> subprocess.CompletedProcess:
    "Run `leptonhub --home HOME ARGS` in a subprocess, as the holder of `token` if given."
    env = {k: v for k, v in os.environ.items() if not k.startswith('LEPTONHUB_')}
    if token: env['LEPTONHUB_TOKEN'] = token
    if passphrase: env['LEPTONHUB_PASSPHRASE'] = passphrase
    return subprocess.run([str(LEPTONHUB), '--home', str(home), *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line_error(p:subprocess.CompletedProcess, *expect:str):
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == '' and p.stderr.count('\n') == 1, (p.stdout, p.stderr)
    assert p.stderr.startswith('leptonhub: error: '), p.stderr
    for e in expect: assert e in p.stderr, p.stderr

# ---------------------------------------------------------------------------------------------- round trip

def test_round_trip_versions_and_content_addressing(hub_home):
    hub = Hub.init(hub_home)
    first, second = frame(200, seed=0), frame(200, seed=1)
    r = hub.publish('clinic', {'gen': first}, schema=SCHEMA, description='two hundred records')
    assert r == {'dataset': 'clinic', 'version': 1, 'rows': 200, 'quarantined': 0, 'Q': 1.0}
    out = hub.read('clinic')
    assert_same_records(out, first)
    assert_frame_equal(out, ingest({'gen': first}, schema=SCHEMA).data.reset_index(drop=True))  # exactly what was cleaned, dtypes included
    assert len(blob_files(hub_home)) == 1
    assert (hub_home.stat().st_mode & 0o077, (hub_home/KEYRING_FILE).stat().st_mode & 0o777) == (0, 0o600)

    assert hub.publish('clinic', {'gen': second}, schema=SCHEMA)['version'] == 2
    assert len(blob_files(hub_home)) == 2
    assert_same_records(hub.read('clinic'), second)
    assert_same_records(hub.read('clinic', version=1), first)

    # identical content again: a new version, no new blob
    assert hub.publish('clinic', {'gen': second.copy()}, schema=SCHEMA)['version'] == 3
    assert len(blob_files(hub_home)) == 2
    assert version_blobs(hub, 'clinic', 3) == version_blobs(hub, 'clinic', 2)
    assert_same_records(hub.read('clinic', version=3), second)
    assert hub.versions('clinic')[['version', 'rows', 'by']].values.tolist() == [[1, 200, 'admin'], [2, 200, 'admin'], [3, 200, 'admin']]
    ds = hub.datasets()
    assert ds[['name', 'owner', 'version', 'rows']].values.tolist() == [['clinic', 'admin', 3, 200]]
    card = hub.card('clinic')
    assert (card['version'], card['rows'], card['description'], card['columns']) == (3, 200, 'two hundred records', ['a', 'b', 'c', 'note'] + PROVENANCE)
    # a fresh Hub on the same home reads the same
    assert_same_records(Hub(hub_home).read('clinic', version=2), second)
    assert hub.verify_audit()


def test_quarantine_round_trip_with_reasons(hub_home):
    hub = Hub.init(hub_home)
    df = frame(100, seed=3, bad=4)
    r = hub.publish('q', {'site': df}, schema=SCHEMA)
    assert (r['rows'], r['quarantined']) == (96, 4)
    assert_same_records(hub.read('q'), valid_part(df), source='site')
    q = hub.quarantine('q')
    assert q['note'].tolist() == df['note'][:4].tolist()
    assert q['reason'].tolist() == ["c: 'z' is not one of ['x', 'y']"] * 4
    assert q['source_row'].tolist() == [1, 2, 3, 4]
    assert len(blob_files(hub_home)) == 2


def test_shipped_heart_data_round_trip(hub_home):
    from leptonhub.examples import heart_disease_files, heart_disease_schema, HEART_COLUMNS
    hub = Hub.init(hub_home)
    r = hub.publish('heart', heart_disease_files(), schema=heart_disease_schema(), names=HEART_COLUMNS, label='num')
    assert (r['version'], r['rows'], r['quarantined']) == (1, 917, 3)
    cleaned = ingest(heart_disease_files(), schema=heart_disease_schema(), names=HEART_COLUMNS)
    assert_frame_equal(hub.read('heart'), cleaned.data.reset_index(drop=True))
    assert sorted(hub.quarantine('heart')['reason']) == sorted(cleaned.quarantine['reason'])
    g = hub.grant('heart', to='lab', purpose='replication', view='columns', columns=['age', 'chol', 'num'])
    lab = hub.read('heart', view='columns', columns=['age', 'chol', 'num'])
    assert_frame_equal(Hub(hub_home, token=g['token']).read('heart', view='columns'), lab)
    assert lab.shape == (917, 3)

# ---------------------------------------------------------------------------------------------- no plaintext at rest

MARK_TEXT, MARK_QUARANTINE = 'ZQXJ-PLAINTEXT-MARKER-4711', 'QVWK-QUARANTINED-MARKER-0815'
MARK_INT, MARK_FLOAT = 918273645, 8675309.0421

def needles() -> dict[str, bytes]:
    return {'text marker': MARK_TEXT.encode(), 'quarantine marker': MARK_QUARANTINE.encode(),
            'int marker as text': str(MARK_INT).encode(), 'int marker as float64': struct.pack('<d', float(MARK_INT)),
            'int marker as int64': struct.pack('<q', MARK_INT), 'float marker as text': repr(MARK_FLOAT).encode(),
            'float marker as float64': struct.pack('<d', MARK_FLOAT)}

def found_at_rest(home:Path) -> list[str]:
    "Every (file, marker) where a marker appears in any file under `home`, read as bytes."
    hits = []
    for p in sorted(Path(home).rglob('*')):
        if not p.is_file(): continue
        data = p.read_bytes()
        hits += [f'{p.relative_to(home)}: {what}' for what, b in needles().items() if b in data]
    return hits

@pytest.mark.parametrize('passphrase', [None, 'correct horse battery staple'], ids=['plain-keyring', 'passphrase-keyring'])
def test_no_plaintext_at_rest(hub_home, passphrase):
    df = frame(200, seed=7)
    df['note'] = [f'{MARK_TEXT}-{i}' for i in range(len(df))]
    df.loc[7, 'a'], df.loc[11, 'b'] = MARK_INT, MARK_FLOAT
    df.loc[3, 'c'], df.loc[3, 'a'] = MARK_QUARANTINE, MARK_INT  # not an allowed code: this row goes to quarantine (its `a` as int64)
    hub = Hub.init(hub_home, passphrase=passphrase)
    r = hub.publish('secret', {'gen': df}, schema=SCHEMA, description='synthetic records')
    assert (r['rows'], r['quarantined']) == (199, 1)
    g = hub.grant('secret', to='lab', purpose='study', view='raw')
    lab = hub.as_principal(g['token'])
    got = lab.read('secret')
    assert MARK_INT in got['a'].tolist() and MARK_FLOAT in got['b'].tolist() and got['note'].str.startswith(MARK_TEXT).all()
    with pytest.raises(AccessDenied): lab.read('secret', view='columns')  # a denial is audited too
    q = hub.quarantine('secret')
    assert q['c'].tolist() == [MARK_QUARANTINE] and MARK_QUARANTINE in q['reason'].iloc[0]
    hub.publish('secret', {'gen': df.iloc[::-1]}, schema=SCHEMA)  # a second version, more catalog writes
    # the needles are in the plaintext Parquet of what was read (so searching for them means something) ...
    plain = frame_bytes(got) + frame_bytes(q)
    assert [w for w, b in needles().items() if b not in plain and 'as text' not in w] == []
    # ... and nowhere at rest: catalog.db, its -wal and -shm, the keyring and the blobs, while the hub is open
    names = {p.name for p in Path(hub_home).rglob('*') if p.is_file()}
    assert {'catalog.db', KEYRING_FILE} <= names and len(blob_files(hub_home)) == 4
    assert found_at_rest(hub_home) == []
    # nor in what the catalog says about the data: audit log, versions, card
    meta = hub.audit().to_json(date_format='iso') + hub.versions('secret').to_json(date_format='iso') + json.dumps(hub.card('secret'), default=str)
    assert [w for w, b in needles().items() if b in meta.encode()] == []
    assert (hub.audit().outcome == 'denied').sum() == 1
    # and still nowhere once every connection is closed (the WAL checkpointed into catalog.db)
    for h in (hub, lab): h.catalog.dispose()
    assert found_at_rest(hub_home) == []
    assert_frame_equal(Hub(hub_home, passphrase=passphrase).read('secret', version=1), got)

# ---------------------------------------------------------------------------------------------- grant/deny matrix

ROLES = ['admin', 'owner', 'other_owner', 'consumer_columns', 'consumer_raw', 'expired_grant', 'revoked_grant',
         'revoked_token', 'expired_token', 'unknown_token']
ACTIONS = ['read_raw', 'read_columns', 'quarantine', 'grant', 'revoke', 'audit_dataset', 'audit_all', 'publish']
PRINCIPAL = {'admin': 'admin', 'owner': 'owner1', 'other_owner': 'owner2', 'consumer_columns': 'c_cols', 'consumer_raw': 'c_raw',
             'expired_grant': 'c_exp', 'revoked_grant': 'c_rev', 'revoked_token': 'c_rtok', 'expired_token': 'c_xtok'}
OK, AD = None, AccessDenied
EXPECT = {
    'admin':            dict.fromkeys(ACTIONS, OK),
    'owner':            {**dict.fromkeys(ACTIONS, OK), 'audit_all': AD},
    'other_owner':      {**dict.fromkeys(ACTIONS, AD), 'publish': ConflictError},
    'consumer_columns': {**dict.fromkeys(ACTIONS, AD), 'read_columns': OK},
    'consumer_raw':     {**dict.fromkeys(ACTIONS, AD), 'read_raw': OK},
    **{r: dict.fromkeys(ACTIONS, AD) for r in ('expired_grant', 'revoked_grant', 'revoked_token', 'expired_token', 'unknown_token')}}
N_ROWS, N_BAD = 60, 2
TOKEN_ROLES = ('revoked_token', 'expired_token', 'unknown_token')  # refused when the Hub is opened

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A hub with dataset `d` (owned by `owner1`, 60 records, 2 quarantined) and one principal per role, built once and copied
    per test. The `1s` expiries are made past by moving the access module's clock an hour ahead in each test."""
    home = tmp_path_factory.mktemp('world')/'hub'
    admin = Hub.init(home)
    tok = {'admin': None, 'unknown_token': UNKNOWN_TOKEN}
    tok['owner'] = admin.add_principal('owner1', role='owner')
    tok['other_owner'] = admin.add_principal('owner2', role='owner')
    owner = Hub(home, token=tok['owner'])
    owner.publish('d', {'gen': frame(N_ROWS, seed=5, bad=N_BAD)}, schema=SCHEMA)
    Hub(home, token=tok['other_owner']).publish('e', {'gen': frame(10, seed=6)}, schema=SCHEMA)
    tok['consumer_columns'] = owner.grant('d', to='c_cols', purpose='study', view='columns', columns=['a', 'b'])['token']
    tok['consumer_raw'] = owner.grant('d', to='c_raw', purpose='study')['token']
    tok['expired_grant'] = admin.add_principal('c_exp')  # a token that never expires ...
    owner.grant('d', to='c_exp', purpose='study', expires='1s', token=False)  # ... and a grant that does
    tok['revoked_grant'] = owner.grant('d', to='c_rev', purpose='study')['token']
    owner.revoke('d', 'c_rev')
    tok['revoked_token'] = owner.grant('d', to='c_rtok', purpose='study')['token']  # a live grant ...
    admin.revoke_token(tok['revoked_token'])  # ... whose holder's token is revoked
    tok['expired_token'] = admin.add_principal('c_xtok', expires='1s')
    owner.grant('d', to='c_xtok', purpose='study', token=False)
    owner.grant('d', to='victim', purpose='study', token=False)  # for the revoke action
    assert admin.verify_audit()
    for h in (admin, owner): h.catalog.dispose()
    return home, tok

@pytest.fixture
def later(monkeypatch):
    "Move the clock of access decisions an hour ahead: `1s` grants and tokens are then expired."
    monkeypatch.setattr(access, 'utcnow', lambda: utcnow() + timedelta(hours=1))

def act(hub_factory, action:str):
    "Do `action` on dataset `d` as the principal `hub_factory()` opens; return something to check."
    h = hub_factory()
    if action == 'read_raw': return h.read('d')
    if action == 'read_columns': return h.read('d', view='columns', columns=['a', 'b'])
    if action == 'quarantine': return h.quarantine('d')
    if action == 'grant': return h.grant('d', to='newbie', purpose='audit study')
    if action == 'revoke': return h.revoke('d', 'victim')
    if action == 'audit_dataset': return h.audit('d')
    if action == 'audit_all': return h.audit()
    if action == 'publish': return h.publish('d', {'gen': frame(30, seed=9)}, schema=SCHEMA)

def check_allowed(action:str, out, home:Path):
    if action == 'read_raw': assert out.shape == (N_ROWS - N_BAD, 7) and list(out.columns[:4]) == ['a', 'b', 'c', 'note']
    elif action == 'read_columns':
        assert list(out.columns) == ['a', 'b'] and len(out) == N_ROWS - N_BAD
        full = Hub(home).read('d')
        assert_frame_equal(out, full[['a', 'b']])
    elif action == 'quarantine': assert len(out) == N_BAD and (out['c'] == 'z').all() and 'reason' in out
    elif action == 'grant':
        assert out['principal'] == 'newbie' and out['token'].startswith('lh_')
        assert Hub(home, token=out['token']).read('d').shape == (N_ROWS - N_BAD, 7)
    elif action == 'revoke':
        assert out == 1
        with pytest.raises(NotFoundError, match='no live grant'): Hub(home).revoke('d', 'victim')
    elif action == 'audit_dataset': assert len(out) > 5 and (out['dataset'] == 'd').all()
    elif action == 'audit_all': assert out['action'].iloc[0] == 'init' and set(out['dataset'].dropna()) == {'d', 'e'}
    elif action == 'publish':
        assert out['version'] == 2 and out['rows'] == 30
        assert Hub(home).card('d')['owner'] == 'owner1'  # publishing a version does not change the owner

@pytest.mark.parametrize('action', ACTIONS)
@pytest.mark.parametrize('role', ROLES)
def test_grant_deny_matrix(world, tmp_path, later, role, action):
    src, tok = world
    home = tmp_path/'hub'
    shutil.copytree(src, home)
    factory = (lambda: Hub(home)) if role == 'admin' else (lambda: Hub(home, token=tok[role]))
    admin = Hub(home)
    before, grants = admin.audit(), admin.card('d')['grants']
    assert sum(g['active'] for g in grants) == 5  # c_cols, c_raw, c_rtok, c_xtok, victim (not c_exp: expired; not c_rev: revoked)
    expect = EXPECT[role][action]
    if expect is OK:
        out = act(factory, action)
        if action.startswith('read'):
            last = admin.audit().iloc[-1]
            assert (last.actor, last.action, last['view'], last.outcome, last.rows) == (
                PRINCIPAL[role], 'read', action[5:], 'ok', N_ROWS - N_BAD)
        check_allowed(action, out, home)
        assert admin.verify_audit()
        return
    with pytest.raises(LeptonError) as e: act(factory, action)
    assert type(e.value) is expect, f'{role} {action}: {type(e.value).__name__}: {e.value}'
    assert admin.verify_audit()
    assert admin.versions('d')['version'].tolist() == [1]  # nothing was published,
    assert admin.card('d')['grants'] == grants  # granted or revoked
    new = admin.audit().iloc[len(before):]
    assert not (new['outcome'] == 'ok').any(), new  # and nothing else succeeded either
    if action.startswith('read') and role not in TOKEN_ROLES:
        # every refused read (past authentication; see test_refused_tokens_are_audited for the rest) is in the log
        assert new[['actor', 'action', 'dataset', 'view', 'outcome', 'rows']].values.tolist() == [
            [PRINCIPAL[role], 'read', 'd', action[5:], 'denied', 0]]
        assert new['detail'].iloc[0]['reason'] == str(e.value)

def test_matrix_expectations_cover_every_case():
    assert set(EXPECT) == set(ROLES) and all(set(v) == set(ACTIONS) for v in EXPECT.values())


def test_denials_say_why(world, tmp_path, later):
    src, tok = world
    home = tmp_path/'hub'
    shutil.copytree(src, home)
    reasons = {'consumer_raw': ('columns', 'c_raw has no grant to the columns view of d'),
               'expired_grant': ('raw', "c_exp's grant to the raw view of d expired at"),
               'revoked_grant': ('raw', "c_rev's grant to the raw view of d was revoked")}
    for role, (view, why) in reasons.items():
        with pytest.raises(AccessDenied, match=why): Hub(home, token=tok[role]).read('d', view=view)
    for role, why in [('revoked_token', 'this token was revoked'), ('expired_token', 'this token expired at'), ('unknown_token', 'unknown token')]:
        with pytest.raises(AccessDenied, match=why): Hub(home, token=tok[role])
    # what a consumer can see follows its live grants
    assert Hub(home, token=tok['consumer_columns']).datasets()['name'].tolist() == ['d']
    assert Hub(home, token=tok['expired_grant']).datasets()['name'].tolist() == []
    with pytest.raises(NotFoundError): Hub(home, token=tok['revoked_grant']).card('d')
    assert 'grants' not in Hub(home, token=tok['consumer_raw']).card('d')
    report = Hub(home).audit_report('d')
    assert report['denials']['actor'].tolist() == ['c_raw', 'c_exp', 'c_rev']


def test_token_revocation_applies_to_open_sessions(world, tmp_path):
    "`revoke_token` says \"revoke at once\": a Hub already opened with the token must stop working too."
    src, tok = world
    home = tmp_path/'hub'
    shutil.copytree(src, home)
    lab = Hub(home, token=tok['consumer_raw'])
    assert len(lab.read('d')) == N_ROWS - N_BAD
    Hub(home).revoke_token(tok['consumer_raw'])
    with pytest.raises(AccessDenied): Hub(home, token=tok['consumer_raw'])  # a new session is refused ...
    with pytest.raises(AccessDenied): lab.read('d')  # ... and so must the open one be

def test_token_expiry_applies_to_open_sessions(world, tmp_path, monkeypatch):
    "A Hub opened with a token that expires while it is open must stop working when it expires."
    src, tok = world
    home = tmp_path/'hub'
    shutil.copytree(src, home)
    short = Hub(home).issue_token('c_cols', expires='1h')
    lab2 = Hub(home, token=short)
    assert list(lab2.read('d', view='columns').columns) == ['a', 'b']
    monkeypatch.setattr(access, 'utcnow', lambda: utcnow() + timedelta(hours=2))
    with pytest.raises(AccessDenied): lab2.read('d', view='columns')


def test_refused_tokens_are_audited(world, tmp_path, later):
    "A read attempted with a revoked, expired or unknown token is refused, and the refusal is in the audit log."
    src, tok = world
    home = tmp_path/'hub'
    shutil.copytree(src, home)
    before = Hub(home).audit()
    for role in ('revoked_token', 'expired_token', 'unknown_token'):
        with pytest.raises(AccessDenied): Hub(home, token=tok[role]).read('d')
    new = Hub(home).audit().iloc[len(before):]
    assert (new['outcome'] == 'denied').sum() == 3, new

# ---------------------------------------------------------------------------------------------- bad input

@pytest.fixture
def hub1(hub_home) -> Hub:
    "A hub with dataset `d` (100 records) and a grant of its raw view to `lab`."
    hub = Hub.init(hub_home)
    hub.publish('d', {'gen': frame(100, seed=2)}, schema=SCHEMA)
    hub.grant('d', to='lab', purpose='study')
    return hub

def test_unknown_dataset(hub1):
    for call in (lambda: hub1.read('nope'), lambda: hub1.versions('nope'), lambda: hub1.card('nope'),
                 lambda: hub1.quarantine('nope'), lambda: hub1.grant('nope', to='lab', purpose='p'),
                 lambda: hub1.revoke('nope', 'lab'), lambda: hub1.read('nope', version=1)):
        with pytest.raises(NotFoundError, match="no dataset 'nope'"): call()
    with pytest.raises(NotFoundError, match="dataset 'd' has no version 7"): hub1.read('d', version=7)

def test_version_zero_is_not_the_latest(hub1):
    "Versions are numbered from 1: asking for version 0 must not silently serve the latest version."
    hub1.publish('d', {'gen': frame(10, seed=3)}, schema=SCHEMA)
    with pytest.raises(NotFoundError, match="dataset 'd' has no version 0"): hub1.read('d', version=0)
    with pytest.raises(NotFoundError, match="dataset 'd' has no version 0"): hub1.card('d', version=0)

def test_columns_grant_when_a_later_version_lacks_a_column(hub1):
    "A columns grant naming a column the latest version no longer has: a clear, audited refusal, not a pandas KeyError."
    g = hub1.grant('d', to='cols', purpose='p', view='columns', columns=['a', 'b'])
    lab = Hub(hub1.settings.home, token=g['token'])
    assert list(lab.read('d', view='columns').columns) == ['a', 'b']
    hub1.publish('d', {'gen': frame(30, seed=4)[['a', 'c', 'note']]}, schema=Schema({k: SCHEMA.fields[k] for k in ('a', 'c', 'note')}))
    before = len(hub1.audit())
    with pytest.raises(LeptonError, match="'b'"): lab.read('d', view='columns')
    new = hub1.audit().iloc[before:]
    assert new[['actor', 'action', 'version']].values.tolist() == [['cols', 'read', 2]] and new['outcome'].iloc[0] != 'ok'
    assert list(lab.read('d', view='columns', version=1).columns) == ['a', 'b']

def test_revoke_unknown_principal_and_no_live_grant(hub1):
    with pytest.raises(NotFoundError, match="no principal 'ghost'"): hub1.revoke('d', 'ghost')
    with pytest.raises(NotFoundError, match='lab has no live grant on d for the columns view'): hub1.revoke('d', 'lab', view='columns')
    assert hub1.revoke('d', 'lab') == 1
    with pytest.raises(NotFoundError, match='lab has no live grant on d'): hub1.revoke('d', 'lab')
    with pytest.raises(NotFoundError, match='unknown token'): hub1.revoke_token(UNKNOWN_TOKEN)

def test_grant_to_unknown_view_lists_the_views(hub1):
    with pytest.raises(InputError) as e: hub1.grant('d', to='lab2', purpose='p', view='pseudonymised')
    assert "there is no view 'pseudonymised'" in str(e.value) and 'raw' in str(e.value) and 'columns' in str(e.value)
    assert 'lab2' not in [g['principal'] for g in hub1.card('d')['grants']]

def test_columns_view_checks_its_columns(hub1):
    with pytest.raises(InputError, match=r"the dataset has no columns \['zz'\]"): hub1.grant('d', to='lab2', purpose='p', view='columns', columns=['a', 'zz'])
    with pytest.raises(InputError, match='the columns view needs columns'): hub1.grant('d', to='lab2', purpose='p', view='columns')
    with pytest.raises(InputError, match='non-empty list'): hub1.grant('d', to='lab2', purpose='p', view='columns', columns='a,b')
    assert [g['principal'] for g in hub1.card('d')['grants']] == ['lab']
    # the owner's own columns view is checked the same way, and the refusal is audited
    with pytest.raises(InputError, match=r"no columns \['zz'\]"): hub1.read('d', view='columns', columns=['zz'])
    last = hub1.audit().iloc[-1]
    assert (last.action, last['view'], last.outcome) == ('read', 'columns', 'denied')

def test_grant_needs_a_purpose(hub1):
    for purpose in ('', '   ', None):
        with pytest.raises(InputError, match='a grant needs a purpose'): hub1.grant('d', to='lab2', purpose=purpose)
    assert [g['principal'] for g in hub1.card('d')['grants']] == ['lab']
    with pytest.raises(NotFoundError): hub1.revoke('d', 'lab2')  # no principal was created on the way

def test_duplicate_principal_and_unknown_role(hub1):
    hub1.add_principal('alice', role='owner')
    for name in ('alice', 'lab', 'admin'):
        with pytest.raises(ConflictError, match=f"a principal named '{name}' already exists"): hub1.add_principal(name)
    with pytest.raises(InputError, match="unknown role 'root'"): hub1.add_principal('bob', role='root')

def test_zero_duration_grant_is_not_forever(hub1):
    "`expires='0s'` must not be read as 'never expires': refuse it, or make the grant (and its token) already expired."
    try: g = hub1.grant('d', to='brief', purpose='p', expires='0s')
    except InputError: return
    assert g['expires_at'] is not None
    with pytest.raises(AccessDenied): Hub(hub1.settings.home, token=g['token']).read('d')

def test_no_hub_here(tmp_path):
    with pytest.raises(ConfigError, match='no hub at'): Hub(tmp_path)
    with pytest.raises(ConfigError, match='no hub at'): Hub(tmp_path/'missing')
    assert not (tmp_path/'missing').exists()

def test_init_twice_refuses_and_keeps_the_hub(hub1, hub_home):
    before = (hub_home/KEYRING_FILE).read_bytes()
    with pytest.raises(KeyringError, match='already exists'): Hub.init(hub_home)
    with pytest.raises(KeyringError): Hub.init(hub_home, passphrase='pw', admin='root')
    assert (hub_home/KEYRING_FILE).read_bytes() == before
    hub = Hub(hub_home)
    assert hub.me.name == 'admin' and len(hub.read('d')) == 100
    log = hub.audit()
    assert log['action'].tolist().count('init') == 1 and hub.verify_audit()

def test_init_over_a_hub_whose_keyring_is_lost(hub1, hub_home):
    "A home with a catalog but no keyring: init must refuse with a clear error and leave no new keyring behind."
    (hub_home/KEYRING_FILE).unlink()
    with pytest.raises(LeptonError): Hub.init(hub_home)
    assert not (hub_home/KEYRING_FILE).exists()

def test_passphrase(hub_home, monkeypatch):
    hub = Hub.init(hub_home, passphrase='s3cret')
    hub.publish('d', {'gen': frame(50)}, schema=SCHEMA)
    assert 's3cret' not in (hub_home/KEYRING_FILE).read_text()
    with pytest.raises(KeyringError, match='wrong passphrase'): Hub(hub_home, passphrase='s3cret!')
    with pytest.raises(KeyringError, match='protected by a passphrase'): Hub(hub_home)
    assert len(Hub(hub_home, passphrase='s3cret').read('d')) == 50
    monkeypatch.setenv('LEPTONHUB_PASSPHRASE', 's3cret')
    assert len(Hub(hub_home).read('d')) == 50
    monkeypatch.setenv('LEPTONHUB_PASSPHRASE', 'wrong')
    with pytest.raises(KeyringError, match='wrong passphrase'): Hub(hub_home)

# ---------------------------------------------------------------------------------------------- tampering

@pytest.fixture
def two_versions(hub_home) -> Hub:
    "Dataset `clinic` with version 1 (with a quarantine) and version 2."
    hub = Hub.init(hub_home)
    hub.publish('clinic', {'gen': frame(100, seed=0, bad=3)}, schema=SCHEMA)
    hub.publish('clinic', {'gen': frame(100, seed=1)}, schema=SCHEMA)
    return hub

@pytest.mark.parametrize('where', ['middle', 'last', 'header', 'truncate'])
def test_flipped_blob_byte_is_an_integrity_error(two_versions, hub_home, where):
    data_id, q_id = version_blobs(two_versions, 'clinic', 1)
    p = blob_path(hub_home, data_id)
    b = bytearray(p.read_bytes())
    if where == 'truncate': b = b[:-100]
    else: b[{'middle': len(b)//2, 'last': -1, 'header': 2}[where]] ^= 0x01
    p.write_bytes(bytes(b))
    for hub in (two_versions, Hub(hub_home)):
        with pytest.raises(IntegrityError) as e: hub.read('clinic', version=1)
        assert str(e.value).startswith('dataset clinic version 1: ') and data_id in str(e.value)
        assert len(hub.read('clinic')) == 100  # version 2 is untouched
        assert len(hub.quarantine('clinic', version=1)) == 3

def test_flipped_quarantine_byte(two_versions, hub_home):
    _, q_id = version_blobs(two_versions, 'clinic', 1)
    p = blob_path(hub_home, q_id)
    b = bytearray(p.read_bytes()); b[len(b)//2] ^= 0x80; p.write_bytes(bytes(b))
    with pytest.raises(IntegrityError, match='quarantine of clinic version 1: '): two_versions.quarantine('clinic', version=1)
    assert len(two_versions.read('clinic', version=1)) == 97

def test_deleted_blob_is_not_found_naming_the_dataset(two_versions, hub_home):
    data_id, _ = version_blobs(two_versions, 'clinic', 2)
    blob_path(hub_home, data_id).unlink()
    with pytest.raises(NotFoundError) as e: two_versions.read('clinic')
    assert str(e.value).startswith('dataset clinic version 2: ') and 'missing' in str(e.value)
    assert len(two_versions.read('clinic', version=1)) == 97

def test_another_hubs_keyring_cannot_read(two_versions, hub_home, tmp_path):
    Hub.init(tmp_path/'other')
    shutil.copy(tmp_path/'other'/KEYRING_FILE, hub_home/KEYRING_FILE)
    with pytest.raises(KeyringError, match="another hub's keyring"): Hub(hub_home)      # refused when the hub is opened
    with pytest.raises(KeyringError, match="another hub's keyring"): Hub(hub_home, token=UNKNOWN_TOKEN)

def test_another_hubs_keyring_cannot_write(two_versions, hub_home, tmp_path):
    """Publishing through a foreign keyring must be refused: otherwise the new version is sealed with keys this hub does not
    have and the audit head is re-signed with a foreign key, so restoring the right keyring breaks both."""
    own = (hub_home/KEYRING_FILE).read_bytes()
    Hub.init(tmp_path/'other')
    shutil.copy(tmp_path/'other'/KEYRING_FILE, hub_home/KEYRING_FILE)
    with pytest.raises(KeyringError): Hub(hub_home).publish('clinic', {'gen': frame(20, seed=4)}, schema=SCHEMA)
    (hub_home/KEYRING_FILE).write_bytes(own)
    hub = Hub(hub_home)
    assert hub.verify_audit() and hub.versions('clinic')['version'].tolist() == [1, 2]

def _sql(home:Path, *statements:str):
    con = sqlite3.connect(home/'catalog.db', isolation_level=None)
    try:
        for st in statements: con.execute(st)
    finally: con.close()

AUDIT_TAMPER = {  # name: (SQL, first bad entry, what the verdict says)
    'edit rows':     (["UPDATE audit SET rows = rows + 1 WHERE seq = 4"], 4, 'its content was changed'),
    'edit actor':    (["UPDATE audit SET actor = 'admin' WHERE seq = 5"], 5, 'its content was changed'),
    'edit detail':   (["UPDATE audit SET detail = '{\"reason\": \"none\"}' WHERE seq = 5"], 5, 'its content was changed'),
    'delete':        (["DELETE FROM audit WHERE seq = 3"], 3, 'entry 3 is missing (deleted)'),
    'delete last':   (["DELETE FROM audit WHERE seq = 6"], 6, 'the chain ends at 5 but its head says 6'),
    'swap':          (["UPDATE audit SET seq = -1 WHERE seq = 3", "UPDATE audit SET seq = 3 WHERE seq = 4",
                       "UPDATE audit SET seq = 4 WHERE seq = -1"], 3, 'inserted or reordered'),
}

@pytest.fixture
def six_entries(hub_home) -> Hub:
    "A hub whose audit log is: 1 init, 2 publish, 3 grant, 4 read (ok), 5 read (denied), 6 publish."
    hub = Hub.init(hub_home)
    hub.publish('d', {'gen': frame(30)}, schema=SCHEMA)
    lab = hub.as_principal(hub.grant('d', to='lab', purpose='p', view='columns', columns=['a'])['token'])
    lab.read('d', view='columns')
    with pytest.raises(AccessDenied): lab.read('d')
    hub.publish('d', {'gen': frame(30, seed=1)}, schema=SCHEMA)
    log = hub.audit()
    assert log[['seq', 'action', 'outcome']].values.tolist() == [[1, 'init', 'ok'], [2, 'publish', 'ok'], [3, 'grant', 'ok'],
                                                                [4, 'read', 'ok'], [5, 'read', 'denied'], [6, 'publish', 'ok']]
    assert hub.verify_audit()
    hub.catalog.dispose()
    return hub

@pytest.mark.parametrize('case', list(AUDIT_TAMPER))
def test_audit_tampering_is_detected_and_located(six_entries, hub_home, case):
    statements, bad, problem = AUDIT_TAMPER[case]
    _sql(hub_home, *statements)
    v = Hub(hub_home).verify_audit()
    assert not v and v.first_bad == bad and problem in v.problem
    assert str(v).startswith(f'audit chain broken at entry {bad}: ')
    if case in ('edit rows', 'swap'):
        p = cli(hub_home, 'audit', '--verify')
        assert p.returncode == 1 and p.stderr == f'leptonhub: error: {v}\n', (p.stdout, p.stderr)

def test_cli_audit_verify_broken_is_one_line(six_entries, hub_home):
    "Like every other CLI error: exit 1, nothing on stdout, one line on stderr (not the verdict twice)."
    p = cli(hub_home, 'audit', '--verify')
    assert (p.returncode, p.stdout) == (0, 'audit chain intact (6 entries)\n')
    _sql(hub_home, "DELETE FROM audit WHERE seq = 2")
    assert_one_line_error(cli(hub_home, 'audit', '--verify'), 'audit chain broken at entry 2: entry 2 is missing (deleted)')

def test_forged_audit_head(six_entries, hub_home):
    _sql(hub_home, "UPDATE audit SET rows = 0 WHERE seq = 6")
    # recompute the chain without the key: the content checks pass but the head's MAC does not
    from leptonhub.platform import audit as A
    from leptonhub.platform.catalog import AuditEntry, AuditHead
    hub = Hub(hub_home)
    with hub.catalog.session() as s:
        e = s.get(AuditEntry, 6); e.digest = A._digest(e.prev, e)
        head = s.get(AuditHead, 1); head.digest = e.digest
    v = hub.verify_audit()
    assert not v and 'not authentic' in v.problem and v.first_bad == 6

# ---------------------------------------------------------------------------------------------- interrupted publish

def test_publish_interrupted_at_the_audit_line(two_versions, hub_home, monkeypatch):
    hub = two_versions
    versions, datasets, files = hub.versions('clinic'), hub.datasets(), blob_files(hub_home)
    v2 = hub.read('clinic')
    real = Hub._audit
    def failing(self, s, action, **kw):
        if action == 'publish': raise RuntimeError('disk full while auditing')
        return real(self, s, action, **kw)
    monkeypatch.setattr(Hub, '_audit', failing)
    with pytest.raises(RuntimeError, match='disk full'): hub.publish('clinic', {'gen': frame(80, seed=8, bad=2)}, schema=SCHEMA)
    with pytest.raises(RuntimeError, match='disk full'): hub.publish('fresh', {'gen': frame(80, seed=9)}, schema=SCHEMA)
    monkeypatch.setattr(Hub, '_audit', real)
    assert_frame_equal(hub.versions('clinic'), versions)
    assert_frame_equal(hub.datasets(), datasets)
    with pytest.raises(NotFoundError, match="no dataset 'fresh'"): hub.read('fresh')
    orphans = sorted(set(blob_files(hub_home)) - set(files))
    assert len(orphans) == 3  # v3's data and quarantine, fresh's data
    assert hub.gc() == sorted(p.name for p in orphans)
    assert blob_files(hub_home) == files and hub.gc() == []
    assert_frame_equal(Hub(hub_home).read('clinic'), v2)
    assert len(hub.read('clinic', version=1)) == 97 and len(hub.quarantine('clinic', version=1)) == 3
    assert hub.verify_audit() and 'fresh' not in set(hub.audit()['dataset'].dropna())
    # the same publish, retried, works
    assert hub.publish('clinic', {'gen': frame(80, seed=8, bad=2)}, schema=SCHEMA)['version'] == 3
    assert_same_records(hub.read('clinic'), valid_part(frame(80, seed=8, bad=2)))
    assert len(hub.quarantine('clinic')) == 2

def test_publish_interrupted_at_the_second_blob(two_versions, hub_home, monkeypatch):
    hub = two_versions
    versions, files = hub.versions('clinic'), blob_files(hub_home)
    real, calls = BlobStore.write, []
    def failing(self, data, blob_id=None):
        calls.append(blob_id)
        if len(calls) == 2: raise OSError(28, 'No space left on device')
        return real(self, data, blob_id)
    monkeypatch.setattr(BlobStore, 'write', failing)
    with pytest.raises(OSError, match='No space left'): hub.publish('fresh', {'gen': frame(80, seed=8, bad=2)}, schema=SCHEMA)
    monkeypatch.setattr(BlobStore, 'write', real)
    assert len(calls) == 2
    assert hub.datasets()['name'].tolist() == ['clinic']
    assert_frame_equal(hub.versions('clinic'), versions)
    (orphan,) = set(blob_files(hub_home)) - set(files)
    assert not list((hub_home/'blobs').rglob('*.tmp'))
    assert hub.gc() == [orphan.name] and blob_files(hub_home) == files
    assert len(Hub(hub_home).read('clinic', version=1)) == 97 and len(hub.read('clinic')) == 100
    assert hub.verify_audit()

def test_gc_is_admin_only_and_keeps_shared_blobs(two_versions, hub_home):
    hub = two_versions
    tok = hub.add_principal('o', role='owner')
    with pytest.raises(AccessDenied): Hub(hub_home, token=tok).gc()
    Hub(hub_home, token=tok).publish('copy', {'gen': frame(100, seed=1)}, schema=SCHEMA)  # same content as clinic v2
    assert hub.gc() == [] and len(blob_files(hub_home)) == 3

# ---------------------------------------------------------------------------------------------- key rotation

@pytest.mark.parametrize('passphrase', [None, 'pw'], ids=['plain-keyring', 'passphrase-keyring'])
def test_rotate_keys(hub_home, passphrase):
    hub = Hub.init(hub_home, passphrase=passphrase)
    hub.publish('a', {'gen': frame(50, seed=0, bad=2)}, schema=SCHEMA)
    hub.publish('b', {'gen': frame(50, seed=1)}, schema=SCHEMA)
    hub.publish('b', {'gen': frame(50, seed=2)}, schema=SCHEMA)
    reads = {(n, v): hub.read(n, version=v) for n, v in [('a', 1), ('b', 1), ('b', 2)]}
    quarantine = hub.quarantine('a')
    (old,) = hub.keyring.masters
    r = hub.rotate_keys()
    assert r['rewrapped'] == 4 and r['retired'] == [old] and r['key'] != old
    for _ in range(2):  # and again: a second rotation retires the first one's key
        fresh = Hub(hub_home, passphrase=passphrase)
        assert set(fresh.keyring.masters) == {fresh.keyring.current}
        assert old not in fresh.keyring.masters and old not in (hub_home/KEYRING_FILE).read_text()
        for (n, v), df in reads.items(): assert_frame_equal(fresh.read(n, version=v), df)
        assert_frame_equal(fresh.quarantine('a'), quarantine)
        assert fresh.verify_audit()
        old = fresh.keyring.current
        fresh.rotate_keys()
    assert Hub(hub_home, passphrase=passphrase).audit()['action'].tolist().count('rotate_keys') == 3

def test_rotate_keys_interrupted_midway(two_versions, hub_home, monkeypatch):
    "A rotation that fails while re-wrapping leaves every blob readable, and running it again completes it."
    before = {v: two_versions.read('clinic', version=v) for v in (1, 2)}
    (first,) = two_versions.keyring.masters
    real, calls = Keyring.rewrap, []
    def failing(self, *a):
        calls.append(a)
        if len(calls) == 2: raise OSError('interrupted')
        return real(self, *a)
    monkeypatch.setattr(Keyring, 'rewrap', failing)
    with pytest.raises(OSError, match='interrupted'): two_versions.rotate_keys()
    monkeypatch.setattr(Keyring, 'rewrap', real)
    fresh = Hub(hub_home)
    assert first in fresh.keyring.masters and len(fresh.keyring.masters) == 2
    for v, df in before.items(): assert_frame_equal(fresh.read('clinic', version=v), df)
    r = fresh.rotate_keys()
    assert len(r['retired']) == 2 and first in r['retired'] and r['key'] not in r['retired']
    again = Hub(hub_home)
    assert list(again.keyring.masters) == [r['key']]
    for v, df in before.items(): assert_frame_equal(again.read('clinic', version=v), df)
    assert len(again.quarantine('clinic', version=1)) == 3 and again.verify_audit()

def test_rotate_keys_is_admin_only(two_versions, hub_home):
    tok = two_versions.add_principal('o', role='owner')
    with pytest.raises(AccessDenied): Hub(hub_home, token=tok).rotate_keys()

def test_publish_from_a_hub_opened_before_rotation(two_versions, hub_home):
    """A second Hub (another process, a notebook) opened before `rotate_keys` still wraps data keys with the retired master
    key. It must refuse to publish, or publish data that the hub can read; it must not store data no one can open."""
    stale = Hub(hub_home)
    two_versions.rotate_keys()
    df = frame(40, seed=11)
    try: stale.publish('late', {'gen': df}, schema=SCHEMA)
    except LeptonError: assert 'late' not in Hub(hub_home).datasets()['name'].tolist()
    else: assert_same_records(Hub(hub_home).read('late'), df)

# ---------------------------------------------------------------------------------------------- concurrency

PROCS, PER_PROC = 3, 3

def _publisher(home:str, proc:int, barrier, results):
    "Worker (spawned): open the hub and publish PER_PROC versions of `shared`, starting together with the others."
    try:
        hub = Hub(home)
        barrier.wait(60)
        for i in range(PER_PROC):
            r = hub.publish('shared', {'gen': frame(20, seed=100 * proc + i)}, schema=SCHEMA)
            results.put(('ok', proc, i, r['version']))
    except BaseException as e:
        results.put(('error', proc, -1, repr(e)))

def test_concurrent_publishers(hub_home):
    Hub.init(hub_home).catalog.dispose()
    ctx = mp.get_context('spawn')
    barrier, results = ctx.Barrier(PROCS), ctx.Queue()
    procs = [ctx.Process(target=_publisher, args=(str(hub_home), k, barrier, results)) for k in range(PROCS)]
    for p in procs: p.start()
    got = []
    try:
        for _ in range(PROCS * PER_PROC):
            got.append(results.get(timeout=120))
            assert got[-1][0] == 'ok', got[-1]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive(): p.kill()
    assert [p.exitcode for p in procs] == [0] * PROCS
    assert sorted(v for *_, v in got) == list(range(1, PROCS * PER_PROC + 1))
    for k in range(PROCS):  # each process saw its own versions in increasing order
        mine = [v for _, proc, i, v in sorted(got, key=lambda g: (g[1], g[2])) if proc == k]
        assert mine == sorted(mine) and len(mine) == PER_PROC
    hub = Hub(hub_home)
    assert hub.versions('shared')['version'].tolist() == list(range(1, 10))
    version_of = {(proc, i): v for _, proc, i, v in got}
    for (proc, i), v in version_of.items(): assert_same_records(hub.read('shared', version=v), frame(20, seed=100 * proc + i))
    log = hub.audit('shared')
    assert sorted(log[log.action == 'publish']['version']) == list(range(1, 10))
    assert hub.verify_audit()
    assert hub.gc() == [] and len(blob_files(hub_home)) == 9

# ---------------------------------------------------------------------------------------------- CLI

def test_cli_hub_journey(tmp_path):
    home = tmp_path/'clihub'
    p = cli(home, 'init')
    assert p.returncode == 0 and p.stdout.startswith(f'created a hub at {home}'), p.stderr
    src = frame(50, seed=4)
    src.to_csv(tmp_path/'site.csv', index=False)
    p = cli(home, 'publish', 't', tmp_path/'site.csv')
    assert (p.returncode, p.stdout) == (0, 'published t version 1: 50 records, Q = 1.000, 0 quarantined\n'), p.stderr
    p = cli(home, 'grant', 't', '--to', 'lab', '--view', 'columns', '--columns', 'a,b', '--purpose', 'x')
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.splitlines()
    assert first.startswith('granted the columns view of t to lab (grant gr_') and first.endswith('expires never)')
    token = second.split()[-1]
    assert token.startswith('lh_') and len(token) > 40

    p = cli(home, 'pull', 't', '--view', 'columns', '--out', tmp_path/'lab.csv', token=token)
    assert (p.returncode, p.stdout) == (0, f"wrote 50 records of t (columns view) to {tmp_path/'lab.csv'}\n"), p.stderr
    assert_frame_equal(pd.read_csv(tmp_path/'lab.csv'), src[['a', 'b']], check_dtype=False)
    # no grant to the raw view
    assert_one_line_error(cli(home, 'pull', 't', '--out', tmp_path/'raw.csv', token=token), 'lab has no grant to the raw view of t')
    assert not (tmp_path/'raw.csv').exists()

    p = cli(home, 'revoke', 't', '--from', 'lab')
    assert (p.returncode, p.stdout) == (0, 'revoked 1 grant(s) of lab on t\n'), p.stderr
    assert_one_line_error(cli(home, 'pull', 't', '--view', 'columns', '--out', tmp_path/'again.csv', token=token),
                          "lab's grant to the columns view of t was revoked")
    assert not (tmp_path/'again.csv').exists()

    p = cli(home, 'ls', '--json')
    assert p.returncode == 0, p.stderr
    assert [(d['name'], d['owner'], d['version'], d['rows']) for d in json.loads(p.stdout)] == [('t', 'admin', 1, 50)]
    p = cli(home, 'show', 't')
    assert p.returncode == 0, p.stderr
    card = json.loads(p.stdout)
    assert (card['name'], card['rows'], card['columns']) == ('t', 50, ['a', 'b', 'c', 'note'] + PROVENANCE)
    assert [(g['principal'], g['view'], g['purpose'], g['active']) for g in card['grants']] == [('lab', 'columns', 'x', False)]
    assert_one_line_error(cli(home, 'show', 'nope'), "no dataset 'nope'")
    assert_one_line_error(cli(tmp_path/'elsewhere', 'ls'), 'no hub at')

    hub = Hub(home)
    log = hub.audit('t')
    assert log[['action', 'actor', 'view', 'outcome']].fillna('-').values.tolist() == [
        ['publish', 'admin', '-', 'ok'], ['grant', 'admin', 'columns', 'ok'], ['read', 'lab', 'columns', 'ok'],
        ['read', 'lab', 'raw', 'denied'], ['revoke', 'admin', '-', 'ok'], ['read', 'lab', 'columns', 'denied']]
    assert log['rows'].tolist()[2] == 50 and log['purpose'].tolist()[2] == 'x'
    assert hub.verify_audit()
