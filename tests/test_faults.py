"""Faults: processes killed with SIGKILL mid-write, disks that fill up or turn read-only, several processes at once on
one catalog, and the races between key rotation and everything else. Nothing acknowledged may be lost, nothing
half-written may be seen, the audit chain must verify, and every failure must say what went wrong.
The long crash run is `bench/stress_crash.py` (`make stress`); this file runs a short one."""
import errno, os, re, sqlite3, threading, time
from contextlib import contextmanager
from pathlib import Path
import pandas as pd
import pytest
import sqlalchemy as sa

from leptonhub.core import ConflictError, LeptonError
from leptonhub.platform.catalog import Catalog, Blob
from leptonhub.platform.hub import Hub, KEYRING_FILE
from faults.crash import (ENV_KILL, POINTS, MARKER, campaign, crash_run, journal, records, whole, debris, plaintext_at_rest, Checker)
from faults.disk import Disk, failing_disk, small_tmpfs, remount, fill
from faults.concurrency import run_concurrently
import random


@pytest.fixture(autouse=True)
def _no_hub_env(monkeypatch):
    for k in ('LEPTONHUB_TOKEN', 'LEPTONHUB_PASSPHRASE', 'LEPTONHUB_CATALOG_URL', 'LEPTONHUB_STORAGE_URL', ENV_KILL):
        monkeypatch.delenv(k, raising=False)


def table(seed:int, n:int=60) -> pd.DataFrame: return records(random.Random(seed), n)


def state(hub:Hub) -> dict:
    "Everything a fault must not change: each version's digest, the grants, the audit length, the keyring's keys."
    out = {}
    for name in hub.datasets()['name']:
        for v in hub.versions(name)['version']:
            df = hub.read(name, version=v)
            assert whole(df)
            out[(name, v)] = df['dig'].iloc[0]
    return out


# ---------------------------------------------------------------------------------------------- SIGKILL

def test_crash_safety_under_sigkill(tmp_path):
    "A short run of the crash campaign (the long one is `bench/stress_crash.py --runs 200`): every kill leaves a whole hub."
    r = campaign(tmp_path, runs=16, seed=11, per_hub=8)
    assert r['problems'] == [] and r['losses'] == 0
    assert r['runs'] == r['kills'] == 16 and 'exit' not in ''.join(r['kills_by_point'])
    assert len(r['kills_by_point']) >= 5                    # random moments and several named points
    assert r['operations_acknowledged'] >= 16 and r['counts']['acknowledged publish'] >= 4
    assert r['counts']['versions checked'] > 0 and r['counts']['blobs checked'] >= r['counts']['versions checked']


@pytest.mark.parametrize('point', ['blob.placed:1', 'audit.append:1', 'commit.before:1', 'commit.after:1', 'keyring.tmp:1', 'retire:1'])
def test_kill_at_a_named_point_from_the_environment(tmp_path, monkeypatch, point):
    "`$LEPTONHUB_KILL_AT` kills the child at a named point; what it began there is wholly done or wholly undone."
    home, acks = tmp_path/'hub', tmp_path/'acks.jsonl'
    Hub.init(home).catalog.dispose()
    monkeypatch.setenv(ENV_KILL, point)
    assert crash_run(home, acks, seed=5) == point                  # killed at the point, not by the deadline
    log = journal(acks)
    if not point.startswith('commit'): assert log[-1]['k'] == 'begin'   # it died inside the operation it had begun
    bad, n = Checker(home, acks)()
    assert bad == []
    assert plaintext_at_rest(home) == [] and debris(home) == []     # the checker's gc removed what the kill left


def test_marker_shows_in_plaintext_parquet():
    "The plaintext scan means something: the marker survives Parquet encoding and compression."
    from leptonhub.platform.storage import frame_bytes
    assert MARKER in frame_bytes(table(3, n=2000)) and set(POINTS) >= {'rewrap', 'retire', 'audit.append'}


# ---------------------------------------------------------------------------------------------- disk full, read-only

@pytest.mark.parametrize('free', [0, 300, 6000], ids=['no-space', 'space-for-a-header', 'space-for-half'])
def test_disk_full_while_publishing(hub_home, free):
    hub = Hub.init(hub_home)
    hub.publish('alpha', table(1, 400))
    before, log = state(hub), len(hub.audit())
    with failing_disk(Disk(free)) as disk:
        with pytest.raises(OSError, match='nothing was published') as e: hub.publish('alpha', table(2, 400))
    assert e.value.errno == errno.ENOSPC and 'No space left on device' in str(e.value) and str(hub.store.root) in str(e.value)
    assert disk.failures >= 1
    assert state(hub) == before and len(hub.audit()) == log + len(before)   # only the reads of `state` were added
    assert debris(hub_home) == [] and hub.gc() == [] and hub.verify_audit()
    assert hub.publish('alpha', table(2, 400))['version'] == 2            # once there is space again, the same call works


def test_permission_denied_while_publishing(hub_home):
    hub = Hub.init(hub_home)
    hub.publish('alpha', table(1))
    before = state(hub)
    with failing_disk(Disk(0, errno.EACCES)):
        with pytest.raises(PermissionError, match='cannot store data in .*fix permissions'): hub.publish('alpha', table(2))
        with pytest.raises(PermissionError, match='cannot write the keyring'): hub.rotate_keys()
    assert state(hub) == before and debris(hub_home) == [] and hub.verify_audit()


def test_disk_full_while_rotating_keys(hub_home):
    "A rotation whose keyring cannot be written fails and changes nothing: the process goes on with the keys on disk."
    hub = Hub.init(hub_home)
    hub.publish('alpha', table(1))
    keys = dict(hub.keyring.masters)
    with failing_disk(Disk(10)):
        with pytest.raises(OSError, match='cannot write the keyring .* the keyring file is unchanged') as e: hub.rotate_keys()
    assert e.value.errno == errno.ENOSPC
    assert hub.keyring.masters == keys and Hub(hub_home).keyring.masters == keys
    hub.publish('alpha', table(2))          # wraps its data key under a master key the keyring file holds
    again = Hub(hub_home)
    assert [whole(again.read('alpha', version=v)) for v in (1, 2)] == [True, True]
    assert debris(hub_home) == [] and again.verify_audit()
    assert 'rotate_keys' not in again.audit().action.tolist()


def test_full_disk(tmp_path):
    "A real small tmpfs filled up (where this machine lets us mount one; the failing layer elsewhere): typed error, nothing lost."
    with small_tmpfs('3m') as where:
        home = (where or tmp_path)/'hub'
        hub = Hub.init(home)
        hub.publish('alpha', table(1, 200))
        g = hub.grant('alpha', to='lab', purpose='fault test')
        before = state(hub)
        with (failing_disk(Disk(100)) if where is None else _filled(where)):
            with pytest.raises(OSError, match='cannot store data in .*No space left on device; nothing was published') as e: hub.publish('alpha', table(2, 5000))
            assert e.value.errno == errno.ENOSPC
        assert state(hub) == before and debris(home) == [] and hub.gc() == [] and hub.verify_audit()
        assert whole(hub.as_principal(g['token']).read('alpha')) and hub.publish('alpha', table(2, 5000))['version'] == 2


@contextmanager
def _filled(where:Path):
    "The tmpfs at `where` full while the block lasts."
    filler = fill(where)
    try: yield filler
    finally: filler.unlink()


@contextmanager
def _catalog_fails(hub:Hub, message:str):
    "Every write statement of `hub`'s catalog fails with SQLite's `message`, as it does on a full or read-only disk."
    def refuse(conn, cursor, statement, *a):
        if statement.lstrip().upper().startswith(('INSERT', 'UPDATE', 'DELETE', 'BEGIN IMMEDIATE')): raise sqlite3.OperationalError(message)
    sa.event.listen(hub.catalog.engine, 'before_cursor_execute', refuse)
    try: yield
    finally: sa.event.remove(hub.catalog.engine, 'before_cursor_execute', refuse)


@pytest.mark.parametrize('kind', ['full', 'read-only'])
def test_catalog_on_a_full_or_read_only_disk(tmp_path, kind):
    "When the catalog's own disk is full or read-only, every call fails with a typed error that says so, and nothing changes."
    want = {'full': r'full|No space', 'read-only': r'[Rr]ead-only|readonly|cannot be written'}[kind]
    with small_tmpfs('3m') as where:
        home = (where or tmp_path)/'hub'
        hub = Hub.init(home)
        hub.publish('alpha', table(1, 200))
        g = hub.grant('alpha', to='lab', purpose='fault test')
        before = state(hub)
        if where is None: fault = _catalog_fails(hub, 'database or disk is full' if kind == 'full' else 'attempt to write a readonly database')
        elif kind == 'full': fault = _filled(where)
        else:
            hub.catalog.dispose()
            assert remount(where, 'ro')
            fault = _remounted(where)
        with fault:
            calls = [lambda: hub.grant('alpha', to=f'lab{i}', purpose='fault test') for i in range(50)] if kind == 'full' else \
                    [lambda: hub.revoke('alpha', 'lab'), lambda: hub.publish('alpha', table(3, 200)), lambda: hub.read('alpha')]
            errors = []
            for call in calls:
                try: call()
                except Exception as e: errors.append(e)
            assert errors, 'no write failed'
            for e in errors: assert isinstance(e, (OSError, LeptonError)) and re.search(want, str(e)), f'{type(e).__name__}: {e}'
        hub = Hub(home)
        assert {k: v for k, v in state(hub).items() if k in before} == before and hub.verify_audit() and debris(home) == []
        assert whole(hub.as_principal(g['token']).read('alpha'))


@contextmanager
def _remounted(where:Path):
    try: yield
    finally: assert remount(where, 'rw')


# ---------------------------------------------------------------------------------------------- several processes

def test_concurrent_publish_grant_read_rotate(hub_home):
    Hub.init(hub_home).catalog.dispose()
    bad, n = run_concurrently(hub_home, publishers=3, versions=4, readers=2, rotators=2, rotations=2)
    assert bad == []
    assert n['publishes acknowledged'] == 12 and n['versions'] == 14   # 12 from the workers, one base version per dataset
    assert n['rotations acknowledged'] == 4 and n['reads'] > 0 and n['grants acknowledged'] > 0


def test_busy_catalog_reports_its_timeout(hub_home):
    "A writer that never lets go makes others fail after the catalog's timeout, with a typed error that names it: no hang."
    Hub.init(hub_home).publish('alpha', table(1))
    hub = Hub(hub_home)
    hub.catalog = Catalog(hub.settings.catalog_url, timeout_s=1)
    holder = sqlite3.connect(hub_home/'catalog.db', isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')
    try:
        for call in (lambda: hub.publish('alpha', table(2)), lambda: hub.read('alpha'), lambda: hub.grant('alpha', to='x', purpose='y')):
            t0 = time.monotonic()
            with pytest.raises(ConflictError, match=r'\b1 s\b'): call()
            assert time.monotonic() - t0 < 10
    finally: holder.execute('ROLLBACK'); holder.close()
    assert hub.publish('alpha', table(2))['version'] == 2 and hub.verify_audit()


# ---------------------------------------------------------------------------------------------- races with key rotation

def _pause_once(obj, attr:str, until:threading.Event, nth:int=1, after:bool=True, limit:float=2.0):
    "Make `obj.attr` wait (at most `limit` s) for `until` at its `nth` call, just `after` it ran or just before."
    real, calls = getattr(obj, attr), []
    def paused(*a, **k):
        calls.append(1)
        if len(calls) == nth and not after: until.wait(limit)
        out = real(*a, **k)
        if len(calls) == nth and after: until.wait(limit)
        return out
    setattr(obj, attr, paused)


def test_publish_racing_a_rotation_stays_readable(hub_home):
    "A publish that read the keyring just before another process rotated it must not wrap its key under the retired master."
    Hub.init(hub_home).publish('alpha', table(1))
    slow, admin, rotated = Hub(hub_home), Hub(hub_home), threading.Event()
    _pause_once(slow.keyring, 'refresh', rotated, nth=2)   # publish's second look at the keyring: the rotation lands here
    t = threading.Thread(target=lambda: slow.publish('beta', table(2)))
    t.start(); time.sleep(0.3)
    admin.rotate_keys(); rotated.set(); t.join(30)
    fresh = Hub(hub_home)
    assert whole(fresh.read('beta')) and whole(fresh.read('alpha')) and len(fresh.keyring.masters) == 1


def test_read_racing_a_rotation(hub_home):
    "A reader whose keyring predates a rotation that finished a moment ago still reads (it re-reads the keyring)."
    hub = Hub.init(hub_home)
    hub.publish('alpha', table(1))
    token = hub.grant('alpha', to='lab', purpose='race')['token']
    reader = Hub(hub_home, token=token)
    real, calls = reader.keyring.refresh, []
    def late():
        calls.append(1)
        if len(calls) == 1: hub.rotate_keys(); return False   # this process looked just before the rotation
        return real()
    reader.keyring.refresh = late
    assert whole(reader.read('alpha'))


def test_two_rotations_at_once_keep_every_key_that_wraps_data(hub_home):
    Hub.init(hub_home).publish('alpha', table(1))
    first, second, done = Hub(hub_home), Hub(hub_home), threading.Event()
    _pause_once(first.keyring, 'retire', done, after=False)   # the first rotation stalls just before retiring its old key
    t = threading.Thread(target=first.rotate_keys)
    t.start(); time.sleep(0.3)
    second.rotate_keys(); done.set(); t.join(30)
    fresh = Hub(hub_home)
    with fresh.catalog.session() as s: kids = set(s.scalars(sa.select(Blob.kid)))
    assert kids <= set(fresh.keyring.masters) and whole(fresh.read('alpha'))
