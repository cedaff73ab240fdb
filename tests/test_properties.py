"""Invariants of the hub, checked by hypothesis on generated inputs, where the unit tests of each module do not already reach:

- encryption at rest through the `BlobStore` (what the hub actually writes): round trip, content addressing, no plaintext on
  disk, any flipped bit of a stored blob or of its wrapped key detected, and any sequence of key rotations keeping every
  blob readable while retired keys open nothing;
- the k, l and t guarantees of the `anonymized` view as the hub serves it (`check_view` then `apply_view`, and a consumer's
  read through a grant), not only of `anonymize` itself;
- the audit chain: any number of random entries verifies, and any single edit, deletion, swap, unauthenticated append or
  wrong key is detected at the entry where it happened;
- E ≤ 1: `efficiency` on any ledger either gives 0 ≤ E ≤ 1 with N ≤ C or refuses it, and the ledger that `ingest` writes
  for messy data gives exactly N = the records delivered.

Every test runs a bounded number of examples, derandomized, so the file takes the same (short) time on every run."""
from __future__ import annotations
import os, string, tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
import numpy as np, pandas as pd, pytest, sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from leptonhub.core import InputError, NotFoundError
from leptonhub.privacy.crypto import IntegrityError, KeyringError, Keyring, Envelope, TAG
from leptonhub.platform.storage import BlobStore, frame_bytes, bytes_frame
from leptonhub.platform.access import check_view, apply_view
from leptonhub.platform.catalog import Catalog, AuditEntry, AuditHead
from leptonhub.platform import audit
from leptonhub.platform.hub import Hub
from leptonhub.platform.ingest import ingest
from leptonhub.platform.schema import Schema, Field
from leptonhub.metrics.ledger import Ledger, COUNTS
from leptonhub.metrics.score import efficiency

def bounded(n:int) -> settings:
    "`n` examples, the same ones every run, no per-example deadline."
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------- encryption at rest, through the blob store

class Store:
    "A keyring and a blob store in a fresh temporary folder."
    def __enter__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.keyring = Keyring.create(Path(self.dir.name)/'keyring.json')
        self.store = BlobStore(str(Path(self.dir.name)/'blobs'), self.keyring, durable=False)
        return self
    def __exit__(self, *exc): self.dir.cleanup()

blobs = st.one_of(st.binary(max_size=2000), st.integers(0, 60_000).map(lambda n: os.urandom(n)))

@bounded(40)
@given(blobs, st.binary(min_size=16, max_size=16))
def test_store_round_trip_addressing_and_no_plaintext(data, marker):
    "What is written reads back exactly; equal content gets the same id, other content another; no 16 bytes of the plaintext reach the disk."
    data = data + marker * 3
    with Store() as s:
        bid, env, size = s.store.write(data)
        assert s.store.read(bid, env) == data
        assert bid == s.store.address(data) and s.store.address(data + b'.') != bid
        stored = Path(s.store.path(bid)).read_bytes()
        assert len(stored) == size and marker not in stored
        bid2, env2, _ = s.store.write(data)
        assert bid2 == bid and env2.wrapped != env.wrapped               # same address, a fresh data key
        assert s.store.read(bid, env2) == data

@bounded(60)
@given(st.binary(min_size=1, max_size=5000), st.data())
def test_any_flipped_bit_of_a_stored_blob_is_detected(data, draw):
    "Flipping any one bit of the file on disk makes the read fail with an `IntegrityError` naming the blob — never wrong data."
    with Store() as s:
        bid, env, size = s.store.write(data)
        path = Path(s.store.path(bid))
        raw = bytearray(path.read_bytes())
        pos, bit = draw.draw(st.integers(0, len(raw) - 1)), draw.draw(st.integers(0, 7))
        raw[pos] ^= 1 << bit
        path.write_bytes(bytes(raw))
        with pytest.raises(IntegrityError) as e: s.store.read(bid, env)
        assert bid in str(e.value)

@bounded(60)
@given(st.binary(max_size=500), st.data())
def test_any_flipped_bit_of_a_wrapped_key_is_detected(data, draw):
    "Flipping any one bit of the wrapped data key (as the catalog stores it) fails the read with an `IntegrityError`."
    with Store() as s:
        bid, env, _ = s.store.write(data)
        w = bytearray(env.wrapped)
        w[draw.draw(st.integers(0, len(w) - 1))] ^= 1 << draw.draw(st.integers(0, 7))
        with pytest.raises(IntegrityError) as e: s.store.read(bid, Envelope(env.kid, bytes(w)))
        assert bid in str(e.value)

@bounded(25)
@given(st.lists(st.sampled_from(['write', 'write', 'rotate', 'retire']), min_size=1, max_size=12), st.binary(max_size=300))
def test_rotations_keep_every_blob_readable(ops, seed):
    "Under any sequence of writes, rotations (re-wrapping every key, as `Hub.rotate_keys` does) and retirements, every blob stays readable from the reopened keyring, and an envelope under a retired key opens nothing."
    with Store() as s:
        envs, stale = {}, []
        for i, op in enumerate(ops):
            if op == 'write':
                data = seed + bytes([i]) * (i + 1)
                bid, env, _ = s.store.write(data)
                envs[bid] = (env, data)
            elif op == 'rotate':
                s.keyring.rotate()
                for bid, (env, data) in list(envs.items()):
                    stale.append((bid, env))
                    envs[bid] = (Envelope(*s.keyring.rewrap(env.kid, env.wrapped, bid)), data)
            else:
                for kid in [k for k in s.keyring.masters if k != s.keyring.current]: s.keyring.retire(kid)
        reopened = BlobStore(s.store.root, Keyring.open(s.keyring.path), durable=False)
        for bid, (env, data) in envs.items():
            assert env.kid == reopened.keyring.current and reopened.read(bid, env) == data
        for bid, env in stale:
            if env.kid in reopened.keyring.masters: assert reopened.read(bid, env) == envs[bid][1]
            else:
                with pytest.raises(KeyringError, match='not in the keyring'): reopened.read(bid, env)

# ---------------------------------------------------------------- k, l and t of the anonymized view as served

DIAGNOSES = ['healthy', 'angina', 'infarct', 'arrhythmia', 'valve']

@st.composite
def clinics(draw, max_rows:int=150):
    "A clinic table from a drawn seed: an identifier, three quasi-identifiers of mixed kinds, a diagnosis, a lab value and record pointers."
    n = draw(st.integers(12, max_rows))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = draw(st.integers(2, len(DIAGNOSES)))
    return pd.DataFrame({'patient': [f'P{i:05d}' for i in range(n)], 'age': rng.integers(18, 95, n),
                         'sex': rng.choice(['F', 'M'], n), 'zip': rng.choice(['10115', '10117', '10119', '20095', '20097'], n),
                         'diagnosis': rng.choice(DIAGNOSES[:m], n), 'chol': rng.normal(220, 40, n).round(1),
                         'source_file': 'site.csv', 'source_row': np.arange(2, n + 2)})

def emd(values, whole) -> float:
    "Earth mover's distance between two categorical distributions (half the L1 distance)."
    p, q = Counter(values), Counter(whole)
    return 0.5 * sum(abs(p[v] / len(values) - q[v] / len(whole)) for v in set(whole))

def check_served(raw:pd.DataFrame, out:pd.DataFrame, qi:list[str], k:int, l:int|None, t:float|None, drop:list[str]):
    "The served table hides every record among ≥ k, each group holds ≥ l diagnoses at distance ≤ t, and leaks no identifier or record pointer."
    assert len(out) == len(raw)
    assert not {'source_file', 'source_row', *drop} & set(out.columns)
    assert 'patient' not in out.columns or not set(out.patient) & set(raw.patient)             # pseudonymised, never the real id
    groups = out.astype({a: str for a in qi}).groupby(qi, observed=True)
    assert groups.size().min() >= k
    kept = out[~(out[qi].astype(str) == '*').all(axis=1)]
    for _, g in kept.astype({a: str for a in qi}).groupby(qi, observed=True):
        if l: assert g.diagnosis.nunique() >= l
        if t is not None: assert emd(g.diagnosis.tolist(), raw.diagnosis.tolist()) <= t + 1e-9
    pd.testing.assert_series_equal(out.chol.reset_index(drop=True), raw.chol.reset_index(drop=True))   # what is not a QI is untouched

@bounded(40)
@given(clinics(), st.integers(2, 8), st.sampled_from([None, 2, 3]), st.sampled_from([None, 0.3, 0.5]),
       st.sampled_from(['mondrian', 'mondrian-strict', 'greedy']), st.sampled_from([0.0, 0.1]), st.booleans())
def test_anonymized_view_guarantees(raw, k, l, t, method, ms, drop_sex):
    "The `anonymized` view, checked and applied as the hub serves it, meets its k, l and t — or the request is refused as unreachable."
    qi, drop = (['age', 'zip'], ['sex']) if drop_sex else (['age', 'sex', 'zip'], [])
    params = {'qi': qi, 'k': k, 'method': method, 'max_suppression': ms, 'identifiers': ['patient'], 'drop': drop}
    if l or t is not None: params |= {'sensitive': 'diagnosis', **({'l': l} if l else {}), **({'t': t} if t is not None else {})}
    kept = check_view('anonymized', params, list(raw.columns))
    try: out = apply_view(raw, 'anonymized', kept, secret=lambda name: b'k' * 32)
    except InputError as e:
        assert 'larger than the table' in str(e) or 'no grouping can reach' in str(e), str(e)
        assert k > len(raw) or (l and raw.diagnosis.nunique() < l), str(e)
        return
    check_served(raw, out, qi, k, l, t, drop)

@pytest.fixture(scope='module')
def clinic_hub(tmp_path_factory):
    "A hub holding one generated clinic table."
    hub = Hub.init(tmp_path_factory.mktemp('props')/'hub')
    rng = np.random.default_rng(5)
    n = 240
    df = pd.DataFrame({'patient': [f'P{i:05d}' for i in range(n)], 'age': rng.integers(18, 95, n), 'sex': rng.choice(['F', 'M'], n),
                       'zip': rng.choice(['10115', '10117', '10119', '20095'], n), 'diagnosis': rng.choice(DIAGNOSES[:3], n),
                       'chol': rng.normal(220, 40, n).round(1)})
    hub.publish('clinic', df, keys=['patient'], qi=['age', 'sex', 'zip'])
    return hub, hub.read('clinic')

@bounded(8)
@given(st.integers(2, 12), st.sampled_from([None, 2, 3]), st.sampled_from([None, 0.4]))
def test_consumer_read_of_the_anonymized_view(clinic_hub, k, l, t):
    "A consumer who reads the anonymized view through a grant gets a table meeting the grant's k, l and t, with identifiers pseudonymised."
    hub, raw = clinic_hub
    params = {'qi': ['age', 'sex', 'zip'], 'k': k, 'identifiers': ['patient'], **({'sensitive': 'diagnosis'} if l or t else {}),
              **({'l': l} if l else {}), **({'t': t} if t else {})}
    g = hub.grant('clinic', to=f"lab-{k}-{l}-{str(t).replace('.', '_')}", purpose='properties', view='anonymized', **params)
    out = hub.as_principal(g['token']).read('clinic', view='anonymized')
    check_served(raw, out, params['qi'], k, l, t, [])

# ---------------------------------------------------------------- the audit chain

KEY, OTHER = b'a' * 32, b'b' * 32

@pytest.fixture(scope='module')
def catalog(tmp_path_factory):
    return Catalog(f"sqlite:///{tmp_path_factory.mktemp('audit')/'catalog.db'}")

text = st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=12)
entries = st.lists(st.fixed_dictionaries({
    'actor': text, 'action': st.sampled_from(['publish', 'read', 'grant', 'revoke', 'http', 'query']),
    'dataset': st.none() | text, 'version': st.none() | st.integers(1, 10**6), 'view': st.none() | st.sampled_from(['raw', 'columns', 'anonymized']),
    'rows': st.integers(0, 10**9), 'outcome': st.sampled_from(['ok', 'denied', 'error']), 'purpose': st.none() | text,
    'detail': st.dictionaries(st.sampled_from(['grant', 'reason', 'path', 'status']), st.none() | st.integers(-5, 600) | text, max_size=3)}),
    min_size=1, max_size=12)

def fresh_chain(catalog, rows:list[dict]):
    "Empty the audit log, then append `rows` as separate transactions, as the hub does."
    with catalog.session() as s:
        s.execute(sa.delete(AuditEntry)); s.execute(sa.delete(AuditHead))
    for r in rows:
        with catalog.session() as s: audit.append(s, KEY, **r)

def verdict(catalog, key=KEY) -> audit.Verification:
    with catalog.session() as s: return audit.verify(s, key)

EDITS = {'actor': lambda v: v + 'x', 'action': lambda v: v + 'x', 'dataset': lambda v: (v or '') + 'x', 'version': lambda v: (v or 0) + 1,
         'view': lambda v: (v or '') + 'x', 'rows': lambda v: v + 1, 'outcome': lambda v: 'ok' if v != 'ok' else 'denied',
         'purpose': lambda v: (v or '') + 'x', 'detail': lambda v: {**v, 'forged': True}, 'at': lambda v: v + timedelta(microseconds=1),
         'prev': lambda v: ('0' if v[0] != '0' else '1') + v[1:], 'digest': lambda v: ('0' if v[0] != '0' else '1') + v[1:]}

@bounded(40)
@given(entries, st.data())
def test_any_single_edit_is_detected_where_it_happened(catalog, rows, draw):
    "A chain of random entries verifies; changing any one field of any one entry is found, at that entry."
    fresh_chain(catalog, rows)
    assert verdict(catalog) == audit.Verification(True, len(rows))
    seq, field = draw.draw(st.integers(1, len(rows))), draw.draw(st.sampled_from(sorted(EDITS)))
    with catalog.session() as s:
        e = s.get(AuditEntry, seq)
        setattr(e, field, EDITS[field](getattr(e, field)))
    v = verdict(catalog)
    assert not v and v.entries == len(rows)
    assert v.first_bad == seq, (field, seq, v)

@bounded(40)
@given(entries.filter(lambda r: len(r) >= 2), st.data())
def test_deletions_swaps_and_forged_appends_are_detected(catalog, rows, draw):
    "Deleting any entry, swapping two, appending one without the key, or checking with another key: never a clean verdict."
    n = len(rows)
    fresh_chain(catalog, rows)
    how = draw.draw(st.sampled_from(['delete', 'swap', 'append', 'key']))
    i = draw.draw(st.integers(1, n))
    with catalog.session() as s:
        if how == 'delete': s.delete(s.get(AuditEntry, i))
        elif how == 'swap':
            j = draw.draw(st.integers(1, n).filter(lambda j: j != i))
            a, b = s.get(AuditEntry, i), s.get(AuditEntry, j)
            for f in ('at', 'actor', 'action', 'dataset', 'version', 'view', 'rows', 'outcome', 'purpose', 'detail', 'prev', 'digest'):
                x, y = getattr(a, f), getattr(b, f)
                setattr(a, f, y); setattr(b, f, x)
        elif how == 'append':
            last = s.get(AuditEntry, n)
            e = AuditEntry(seq=n + 1, at=last.at, actor='intruder', action='read', rows=10**6, outcome='ok', detail={}, prev=last.digest)
            e.digest = audit._digest(last.digest, e)
            s.add(e)
    v = verdict(catalog, OTHER if how == 'key' else KEY)
    assert not v, (how, i)
    if how == 'delete': assert v.first_bad == min(i, n) and ('missing' in v.problem or 'ends at' in v.problem)
    if how == 'append': assert v.first_bad == n + 1 and 'head says' in v.problem
    if how == 'key': assert 'not authentic' in v.problem

# ---------------------------------------------------------------- E ≤ 1

ledger_rows = st.lists(st.fixed_dictionaries({'step': st.sampled_from(['collect', 'integrate', 'clean', 'anonymize']),
                                              **{c: st.integers(0, 10**6) for c in COUNTS}}), max_size=8)

@bounded(200)
@given(ledger_rows, st.integers(0, 10**6))
def test_efficiency_of_any_ledger(rows, suppressed):
    "Any ledger with non-negative counts gives 0 ≤ E ≤ 1 with N ≤ C — or is refused because it drops more rows than it ingested."
    led = Ledger()
    for r in rows: led.record(**r)
    try: e = efficiency(led.entries, suppressed)
    except InputError as err:
        assert 'drops more rows' in str(err)
        ingested = sum(r['rows_in'] for r in rows if r['step'] == 'collect')
        assert sum(r['duplicates'] + r['invalid'] for r in rows) + suppressed > ingested
        return
    assert 0 <= e['E'] <= 1 and 0 <= e['N'] <= e['C'] and e['E'] == (e['N'] / e['C'] if e['C'] else 0.0)

SCHEMA = Schema({'id': Field('str', nullable=False), 'age': Field('int', min=0, max=120), 'bp': Field('float', min=40, max=260)})

@st.composite
def messy_csvs(draw):
    "A CSV of valid rows, exact duplicates, rows repeating an id, and invalid rows (ages out of range, unreadable numbers, missing ids), shuffled."
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 200))
    good = [f'p{i},{rng.integers(0, 121)},{rng.integers(40, 261)}' for i in range(n)]
    dups = [good[j] for j in rng.integers(0, n, draw(st.integers(0, 40)))]
    bad = [rng.choice([f'x{i},{rng.integers(121, 999)},120', f'x{i},40,n/a-{i}', f',{rng.integers(0, 120)},100'])
           for i in range(draw(st.integers(0, 40)))]
    lines = good + dups + bad
    rng.shuffle(lines)
    return 'id,age,bp\n' + '\n'.join(lines) + '\n', len(lines)

@bounded(30)
@given(messy_csvs(), st.booleans())
def test_ingest_ledger_gives_N_exactly_and_E_at_most_1(case, keys):
    "For messy data, E from the ledger `ingest` writes counts exactly the delivered records in N and every row read in C."
    text, read = case
    with tempfile.TemporaryDirectory() as d:
        (Path(d)/'site.csv').write_text(text)
        try: cleaned = ingest([Path(d)/'site.csv'], schema=SCHEMA, keys=['id'] if keys else None)
        except InputError as err:
            assert 'every row is invalid' in str(err); return
    e = efficiency(cleaned.ledger.entries)
    assert e['N'] == len(cleaned.data) and e['C'] == read and e['ingested'] == read
    assert e['N'] + len(cleaned.quarantine) == read and e['duplicates'] + e['invalid'] == len(cleaned.quarantine)
    assert 0 < e['E'] <= 1
