"""Tampering with what a hub keeps on disk, and the hub naming what was done: sealed blobs whose bits are flipped, whose chunks are
swapped, moved, cut off or padded; wrapped keys and key ids edited in the catalog; keyrings restored from before a rotation or
damaged; audit entries edited, deleted, inserted, reordered or wiped. Each is refused with an error that says which part and
how. Single-byte flips at fixed places, another hub's keyring and the first audit edits are in test_hub.py; the cipher's own
properties (every bit, every cut) are in test_crypto.py."""
import json, shutil, sqlite3
from pathlib import Path
import httpx, numpy as np, pandas as pd, pytest
import sqlalchemy as sa

from leptonhub import cli
from leptonhub.core import AccessDenied, NotFoundError
from leptonhub.privacy.crypto import IntegrityError, KeyringError, seal, open_sealed, TAG
from leptonhub.platform.hub import Hub, KEYRING_FILE
from leptonhub.platform.catalog import Blob, Dataset, Version, AuditEntry
from leptonhub.platform.api import running
from leptonhub.platform import audit as A

CHUNK, HEADER = 4096, 8

def table(n:int, seed:int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'x': rng.normal(size=n), 'y': rng.integers(0, 1000, n), 'ward': rng.choice(['cardio', 'neuro', 'onco'], n)})

def blob_of(hub:Hub, name:str) -> Blob:
    "The catalog row of the latest version's blob of dataset `name`."
    with hub.catalog.session() as s:
        ds = s.scalar(sa.select(Dataset).where(Dataset.name == name))
        v = s.scalar(sa.select(Version).where(Version.dataset_id == ds.id).order_by(Version.number.desc()))
        return s.get(Blob, v.blob_id)

def blob_file(home:Path, blob_id:str) -> Path: return home/'blobs'/blob_id[:2]/blob_id

def span(i:int, chunk:int=CHUNK) -> tuple[int, int]:
    "(start, stop) of sealed chunk `i` (ciphertext and tag), for a chunk that is full."
    a = HEADER + i * (chunk + TAG)
    return a, a + chunk + TAG

@pytest.fixture
def hub(hub_home) -> Hub:
    """A hub with datasets `d` (20,000 records) and `e`; `d`'s blob is sealed again under its own data key in 4 KiB chunks, as a
    large table's would be in 4 MiB ones: the header carries the chunk size, so the hub reads it as it is."""
    hub = Hub.init(hub_home)
    hub.publish('d', table(20_000, 0))
    hub.publish('e', table(500, 1))
    b = blob_of(hub, 'd')
    key = hub.keyring.unwrap(b.kid, b.wrapped, b.id)
    p = blob_file(hub_home, b.id)
    plain = open_sealed(p.read_bytes(), key, b.id)
    p.write_bytes(seal(plain, key, b.id, CHUNK))
    hub.n_chunks = -(-len(plain) // CHUNK)
    assert hub.n_chunks > 20 and Hub(hub_home).read('d').shape == (20_000, 6)
    return hub

def swap(b:bytes, i:int, j:int) -> bytes:
    (a1, b1), (a2, b2) = span(i), span(j)
    return b[:a1] + b[a2:b2] + b[b1:a2] + b[a1:b1] + b[b2:]

def flip(b:bytes, at:int) -> bytes: return b[:at] + bytes([b[at] ^ 0x10]) + b[at + 1:]

BLOB_TAMPER = {   # name: (change to the sealed file, n_chunks -> words the error must hold)
    'bit flipped in a chunk':       (lambda b, n: flip(b, span(3)[0] + 100), lambda n: 'failed authentication at chunk 3: authentication tag mismatch'),
    'bit flipped in a tag':         (lambda b, n: flip(b, span(5)[1] - 1), lambda n: 'failed authentication at chunk 5: authentication tag mismatch'),
    'two chunks swapped':           (lambda b, n: swap(b, 1, 2), lambda n: 'at chunk 1: chunk order: the chunk at position 1 belongs at position 2'),
    'a chunk moved to the front':   (lambda b, n: b[:HEADER] + b[span(7)[0]:span(7)[1]] + b[HEADER:span(7)[0]] + b[span(7)[1]:],
                                     lambda n: 'at chunk 0: chunk order: the chunk at position 0 belongs at position 7'),
    'a chunk repeated':             (lambda b, n: b[:span(4)[0]] + b[span(2)[0]:span(2)[1]] + b[span(4)[1]:], lambda n: 'at chunk 4: chunk order: the chunk at position 4 belongs at position 2'),
    'last chunks cut off':          (lambda b, n: b[:span(n - 3)[0]], lambda n: f'at chunk {n - 4}: truncated: chunk {n - 4} is not the last one'),
    'cut inside a chunk':           (lambda b, n: b[:span(6)[0] + 1000], lambda n: 'at chunk 6: authentication tag mismatch: its bytes were changed or truncated'),
    'cut inside the header':        (lambda b, n: b[:5], lambda n: 'is truncated'),
    'bytes appended':               (lambda b, n: b + b'\0' * 100, lambda n: 'failed authentication'),
    'not a sealed blob':            (lambda b, n: b'PAR1' + b[4:], lambda n: 'is not a leptonhub sealed blob'),
}

@pytest.mark.parametrize('case', list(BLOB_TAMPER))
def test_blob_tampering_is_named(hub, hub_home, case):
    change, words = BLOB_TAMPER[case]
    b = blob_of(hub, 'd')
    p = blob_file(hub_home, b.id)
    p.write_bytes(change(p.read_bytes(), hub.n_chunks))
    fresh = Hub(hub_home)
    with pytest.raises(IntegrityError) as e: fresh.read('d')
    msg = str(e.value)
    assert msg.startswith(f'dataset d version 1: blob {b.id} ') and words(hub.n_chunks) in msg, msg
    assert fresh.read('e').shape == (500, 6)                # the other dataset is untouched
    log = fresh.audit()
    assert log.action.iloc[-1] == 'read' and log.dataset.iloc[-1] == 'e'
    assert fresh.verify_audit()

def test_blob_of_another_dataset_in_its_place(hub, hub_home):
    "A blob file copied over another's (both genuine, both this hub's) is refused: every chunk is bound to its blob's id."
    d, e = blob_of(hub, 'd'), blob_of(hub, 'e')
    shutil.copy(blob_file(hub_home, e.id), blob_file(hub_home, d.id))
    with pytest.raises(IntegrityError, match=f'blob {d.id} failed authentication at chunk 0: authentication tag mismatch'): Hub(hub_home).read('d')

def _edit_blob_row(hub:Hub, change):
    "Apply `change(row of d's blob, row of e's blob)` in the catalog, as someone who can write the database file would."
    ids = [blob_of(hub, n).id for n in ('d', 'e')]
    with hub.catalog.session() as s: change(*(s.get(Blob, i) for i in ids))
    hub.catalog.dispose()

CATALOG_TAMPER = {   # name: (change to the blob rows (d, e), error, words)
    'wrapped key changed':         (lambda d, e: setattr(d, 'wrapped', bytes([d.wrapped[0] ^ 1]) + d.wrapped[1:]), IntegrityError, 'the wrapped data key of blob {id} was changed'),
    'wrapped key cut short':       (lambda d, e: setattr(d, 'wrapped', d.wrapped[:20]), IntegrityError, 'the wrapped data key of blob {id} is damaged'),
    'wrapped key of another blob': (lambda d, e: setattr(d, 'wrapped', e.wrapped), IntegrityError, 'the wrapped data key of blob {id} was changed'),
    'master key id changed':       (lambda d, e: setattr(d, 'kid', 'mk_0000000000000000'), KeyringError, 'master key mk_0000000000000000 of blob {id} is not in the keyring'),
}

@pytest.mark.parametrize('case', list(CATALOG_TAMPER))
def test_catalog_key_tampering_is_named(hub, hub_home, case):
    change, err, words = CATALOG_TAMPER[case]
    bid = blob_of(hub, 'd').id
    _edit_blob_row(hub, change)
    with pytest.raises(err) as info: Hub(hub_home).read('d')
    assert str(info.value).startswith('dataset d version 1: ') and words.format(id=bid) in str(info.value), str(info.value)
    assert Hub(hub_home).read('e').shape == (500, 6)

# ---------------------------------------------------------------------------------------------- keyrings

def test_keyring_from_before_a_rotation(hub, hub_home, tmp_path):
    "Restoring the keyring's backup from before a key rotation: the hub opens (same secrets), and every read names the missing master key."
    backup = tmp_path/'keyring.backup'
    shutil.copy(hub_home/KEYRING_FILE, backup)
    new = hub.rotate_keys()['key']
    shutil.copy(backup, hub_home/KEYRING_FILE)
    old = Hub(hub_home)
    with pytest.raises(KeyringError, match=f'dataset d version 1: master key {new} of blob .* is not in the keyring'): old.read('d')
    with pytest.raises(KeyringError, match=f'master key {new}'): old.read('e')

@pytest.mark.parametrize('damage, words', [
    (lambda t: t[: len(t) // 2], 'cannot be read'),
    (lambda t: json.dumps({**json.loads(t), 'format': 'other/1'}), 'is not a leptonhub keyring'),
    (lambda t: json.dumps({**json.loads(t), 'keys': {'masters': {}}}), 'is damaged'),
    (lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != 'keys'}), 'is damaged'),
], ids=['cut in half', 'another format', 'secrets removed', 'keys removed'])
def test_damaged_keyring_is_named(hub, hub_home, damage, words):
    p = hub_home/KEYRING_FILE
    p.write_text(damage(p.read_text()))
    with pytest.raises(KeyringError, match=words) as e: Hub(hub_home)
    assert str(p) in str(e.value)

def test_keyring_with_other_master_keys_but_the_same_secrets(hub, hub_home, tmp_path):
    "Master keys swapped in from another keyring while the named secrets stay: the hub opens, and no blob opens."
    other = Hub.init(tmp_path/'other')
    doc, foreign = json.loads((hub_home/KEYRING_FILE).read_text()), json.loads((tmp_path/'other'/KEYRING_FILE).read_text())
    doc['keys']['masters'], doc['current'] = foreign['keys']['masters'], foreign['current']
    (hub_home/KEYRING_FILE).write_text(json.dumps(doc))
    with pytest.raises(KeyringError, match=f'master key {hub.keyring.current} of blob .* is not in the keyring'): Hub(hub_home).read('d')
    other.catalog.dispose()

# ---------------------------------------------------------------------------------------------- the audit chain

def _sql(home:Path, *statements:str):
    con = sqlite3.connect(home/'catalog.db', isolation_level=None)
    try:
        for st in statements: con.execute(st)
    finally: con.close()

@pytest.fixture
def logged(hub_home) -> Hub:
    "A hub with eight audit entries: 1 init, 2 publish, 3 grant, 4 read, 5 read (denied), 6 read, 7 revoke, 8 publish."
    hub = Hub.init(hub_home)
    hub.publish('d', table(50, 0))
    lab = hub.as_principal(hub.grant('d', to='lab', purpose='p')['token'])
    lab.read('d')
    with pytest.raises(AccessDenied): lab.read('d', view='columns')
    lab.read('d', limit=5)
    hub.revoke('d', 'lab')
    hub.publish('d', table(50, 1))
    assert hub.audit().action.tolist() == ['init', 'publish', 'grant', 'read', 'read', 'read', 'revoke', 'publish'] and hub.verify_audit()
    hub.catalog.dispose()
    return hub

def _forge_after(home:Path, seq:int):
    "Recompute, without the key, the digests of every entry from `seq` on (as a forger would), leaving the authenticated head alone."
    hub = Hub(home)
    with hub.catalog.session() as s:
        es = s.scalars(sa.select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq)).all()
        prev = s.get(AuditEntry, seq - 1).digest if seq > 1 else A.GENESIS
        for e in es:
            e.prev = prev
            e.digest = prev = A._digest(prev, e)
    hub.catalog.dispose()

AUDIT_TAMPER = {   # name: (statements, then re-chain from this entry without the key (or None), first bad entry, words)
    'first entry deleted':        (["DELETE FROM audit WHERE seq = 1"], None, 1, 'entry 1 is missing (deleted)'),
    'whole log wiped':            (["DELETE FROM audit", "DELETE FROM audit_head"], None, 1, 'the whole log was deleted'),
    'entries wiped, head kept':   (["DELETE FROM audit"], None, 1, 'the chain ends at 0 but its head says 8'),
    'head deleted':               (["DELETE FROM audit_head"], None, 1, 'the chain head is missing'),
    'denial rewritten as ok':     (["UPDATE audit SET outcome = 'ok' WHERE seq = 5"], None, 5, 'its content was changed'),
    'denial rewritten, re-chained': (["UPDATE audit SET outcome = 'ok' WHERE seq = 5"], 5, 8, 'rewritten and re-chained without the key'),
    'read deleted, re-numbered, re-chained': (["DELETE FROM audit WHERE seq = 4"] + [f"UPDATE audit SET seq = {i - 1} WHERE seq = {i}" for i in range(5, 9)], 4, 8,
                                  'the chain ends at 7 but its head says 8'),
    'entries reordered':          (["UPDATE audit SET seq = -1 WHERE seq = 6", "UPDATE audit SET seq = 6 WHERE seq = 4", "UPDATE audit SET seq = 4 WHERE seq = -1"], None, 4,
                                  'inserted or reordered'),
    'timestamps reordered':       (["UPDATE audit SET at = (SELECT at FROM audit WHERE seq = 2) WHERE seq = 7"], None, 7, 'its content was changed'),
    'entry inserted':             ([f"UPDATE audit SET seq = {i + 1} WHERE seq = {i}" for i in range(8, 3, -1)] +
                                   ["INSERT INTO audit SELECT 4, at, 'admin', 'grant', dataset, version, view, rows, outcome, purpose, detail, prev, digest FROM audit WHERE seq = 3"],
                                   None, 4, 'inserted or reordered'),
    'entry appended, chained':    (["INSERT INTO audit SELECT 9, at, actor, 'read', dataset, version, 'raw', 50, 'ok', purpose, detail, prev, digest FROM audit WHERE seq = 8"], 9, 9,
                                   'the chain ends at 9 but its head says 8'),
}

@pytest.mark.parametrize('case', list(AUDIT_TAMPER))
def test_audit_tampering_is_named(logged, hub_home, case):
    statements, rechain, bad, words = AUDIT_TAMPER[case]
    _sql(hub_home, *statements)
    if rechain: _forge_after(hub_home, rechain)
    v = Hub(hub_home).verify_audit()
    assert not v and v.first_bad == bad and words in v.problem, v
    assert str(v) == f'audit chain broken at entry {bad}: {v.problem}'
    assert cli.main(['--home', str(hub_home), 'audit', '--verify']) == 1

def test_tampering_seen_over_http(hub, hub_home):
    "Over the API a tampered blob is a 500 naming the blob and chunk (logged as an error), and the audit verdict names the entry."
    b = blob_of(hub, 'd')
    p = blob_file(hub_home, b.id)
    p.write_bytes(swap(p.read_bytes(), 2, 3))
    lab = hub.grant('d', to='lab', purpose='p')['token']
    server = Hub(hub_home)
    with running(server) as url, httpx.Client(base_url=url, headers={'Authorization': f'Bearer {lab}'}) as c:
        r = c.get('/api/v1/datasets/d/data')
        assert r.status_code == 500 and r.json()['code'] == 'integrity'
        assert f'blob {b.id} failed authentication at chunk 2: chunk order' in r.json()['message']
        last = server.audit().iloc[-1]
        assert (last.actor, last.action, last.outcome, last.detail['status']) == ('lab', 'http', 'error', 500)
        seq = int(last.seq)
        _sql(hub_home, f"UPDATE audit SET actor = 'nobody' WHERE seq = {seq - 1}")
        admin = httpx.get(f'{url}/api/v1/audit/verify', headers={'Authorization': f'Bearer {hub.issue_token("admin")}'}).json()
    assert admin['ok'] is False and admin['first_bad'] == seq - 1 and admin['problem'] == 'its content was changed'
