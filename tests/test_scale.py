"The Dask path against the in-memory path, on a two-process LocalCluster started once: k-anonymity, generalisation and pseudonyms (property tests), the global k guarantee, ingest, quality scores and Hub.publish."
import numpy as np, pandas as pd, pytest, dask
from hypothesis import given, settings, HealthCheck, strategies as st
from leptonhub.core import InputError, ConfigError, get_settings
from leptonhub.examples import adult, adult_hierarchies, ADULT_QI
from leptonhub.platform import scale
from leptonhub.platform.schema import Schema, Field, Rule
from leptonhub.platform.ingest import ingest
from leptonhub.metrics.quality import score
from leptonhub.privacy.anonymize import anonymize, guarantees, pseudonymize, Hierarchy

SLOW = lambda n: settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])

@pytest.fixture(scope='module')
def client():
    "Two worker processes, one thread each, for the whole module; every `compute()` goes to them."
    c = scale.connect('dask', workers=2)
    with dask.config.set(scheduler=c): yield c
    c.close(); c.cluster.close()

def plain(df:pd.DataFrame) -> pd.DataFrame:
    "Categories as their labels: the Dask release sorts its categories, the in-memory one orders them by class."
    return df.astype({c: object for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})

@st.composite
def tables(draw):
    "A small table with three quasi-identifiers (a number, a code, a small number; some missing) and a payload, and how to cut it."
    n = draw(st.integers(12, 160))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(0, draw(st.integers(1, 40)), n).astype(float)
    a[rng.random(n) < draw(st.sampled_from([0, 0.1]))] = np.nan
    b = rng.choice(np.array(['x', 'y', 'z', 'w', None], dtype=object)[:draw(st.integers(1, 5))], n)
    df = pd.DataFrame({'a': a, 'b': b, 'c': rng.integers(0, draw(st.integers(1, 6)), n), 'v': np.arange(n)})
    k = draw(st.integers(1, max(1, n // 4)))
    return df, k, draw(st.integers(2 * k, max(2 * k, n))), draw(st.integers(5, n)), draw(st.sampled_from(['mondrian', 'mondrian-strict']))

@SLOW(6)
@given(tables())
def test_kanon_equals_in_memory(client, t):
    "Same policy, same table: the Dask release equals the in-memory one label for label, whatever the cells and partitions."
    df, k, cell_rows, part_rows, method = t
    res = scale.anonymize(scale.as_dask(df, part_rows), ['a', 'b', 'c'], k=k, method=method, cell_rows=cell_rows)
    mem = anonymize(df, ['a', 'b', 'c'], k=k, method=method)
    out = res.data.compute()
    pd.testing.assert_frame_equal(plain(out), plain(mem.data))
    assert (res.k, res.suppressed, len(res.class_sizes)) == (mem.k, mem.suppressed, len(mem.class_sizes))
    assert res.ncp == pytest.approx(mem.ncp, abs=1e-12)
    assert guarantees(out, ['a', 'b', 'c'])['k'] >= k

@SLOW(6)
@given(tables(), st.integers(0, 2), st.binary(min_size=16, max_size=32))
def test_generalize_and_pseudonyms_equal_in_memory(client, t, level, key):
    "Full-domain generalisation and keyed pseudonyms give the same table per partition as in memory."
    df, _, _, part_rows, _ = t
    hs = {'a': Hierarchy.intervals(np.arange(0, 40), [5, 10]), 'c': Hierarchy.intervals(np.arange(0, 6), [2, 4])}
    d = scale.as_dask(df.assign(who=df['v'].astype(str)), part_rows)
    got = scale.pseudonymize_columns(scale.generalize(d, {'a': level, 'c': level}, hs), ['who'], key).compute()
    want = scale.pseudonymize_columns(scale.generalize(df.assign(who=df['v'].astype(str)), {'a': level, 'c': level}, hs), ['who'], key)
    pd.testing.assert_frame_equal(got, want)
    assert got['who'].tolist() == pseudonymize(df['v'].astype(str), key).tolist()

def test_k_anonymous_globally(client):
    "Many cells, suppression per cell: every released class holds at least k rows over the whole table, and suppression stays within its share."
    ad = adult().iloc[:12_000]
    k = 20
    res = scale.anonymize(scale.as_dask(ad, 2_500), ADULT_QI, k=k, hierarchies=adult_hierarchies(), max_suppression=0.01, cell_rows=3_000, method='mondrian-strict')
    out = res.data.compute()
    assert res.cells >= 4
    sizes = out.groupby(ADULT_QI, observed=True, dropna=False).size()
    assert sizes.min() >= k and res.k >= k
    assert res.suppressed >= k
    assert res.suppressed <= 0.01 * len(ad)
    assert (res.data.index.compute() == np.arange(len(ad))).all()
    classes = res.classes.compute()
    assert ((classes >= 0) | (out[ADULT_QI] == '*').all(axis=1)).all()
    per_partition = sum(anonymize(ad.iloc[i:i + 2_500], ADULT_QI, k=k, hierarchies=adult_hierarchies(), method='mondrian-strict').ncp * len(ad.iloc[i:i + 2_500]) for i in range(0, len(ad), 2_500)) / len(ad)
    assert res.ncp < per_partition               # the global split loses less than anonymising each partition alone

def test_refusals(client):
    "Requests the Dask path cannot honour get a sentence saying what to change."
    d = scale.as_dask(adult().iloc[:600], 200)
    with pytest.raises(InputError, match="cuts ties by position"): scale.anonymize(d, ADULT_QI, k=5, method='greedy', cell_rows=200)
    with pytest.raises(InputError, match='at least 2k'): scale.anonymize(d, ADULT_QI, k=50, cell_rows=60)
    with pytest.raises(InputError, match="no column 'zip'"): scale.anonymize(d, ['age', 'zip'], k=5)
    with pytest.raises(ConfigError, match="compute is 'local'"): scale.connect('local')
    res = scale.anonymize(d, ADULT_QI, k=5, method='greedy', cell_rows=600)            # one cell: any method
    pd.testing.assert_frame_equal(plain(res.data.compute()), plain(anonymize(adult().iloc[:600], ADULT_QI, k=5, method='greedy').data))

@pytest.fixture
def messy(tmp_path):
    "A CSV of people with invalid values, exact duplicates spread over the file, and repeated identifiers."
    rng = np.random.default_rng(3)
    n = 4_000
    df = pd.DataFrame({'pid': rng.integers(0, 3_000, n).astype(str), 'age': rng.integers(10, 100, n).astype(float), 'sex': rng.choice(['M', 'F', 'x'], n),
                       'city': rng.choice(['Pécs', 'Győr', None], n), 'score': rng.random(n).round(2)})
    df.loc[::9, 'age'] = np.nan
    df = pd.concat([df, df.sample(400, random_state=3)], ignore_index=True)
    path = tmp_path/'people.csv'
    df.to_csv(path, index=False)
    schema = Schema({'pid': Field('str'), 'age': Field('int', min=18, max=95), 'sex': Field('category', values=['M', 'F']), 'city': Field('category'),
                     'score': Field('float', min=0, max=1)}, [Rule('score < 0.98', severity='warn')])
    return path, df, schema

def test_ingest_equals_in_memory(client, messy, tmp_path):
    "CSV in small blocks and a DataFrame: the same records, quarantine (rows as read, reasons), missing report and ledger counts as `ingest`."
    path, df, schema = messy
    for src in ({'people': path}, {'a': df.iloc[:2_000], 'b': df.iloc[2_000:]}):
        sc = scale.ingest(src, tmp_path/f'out{len(src)}', schema=schema, keys=['pid'], blocksize=25_000)
        mem = ingest(src, schema=schema, keys=['pid'])
        assert sc.data.npartitions > 2
        pd.testing.assert_frame_equal(sc.data.compute(), mem.data)
        pd.testing.assert_frame_equal(sc.quarantine.compute(), mem.quarantine)
        pd.testing.assert_frame_equal(sc.missing, mem.missing)
        counts = lambda led: [{k: e[k] for k in ('step', 'source', 'rows_in', 'rows_out', 'invalid', 'duplicates')} for e in led.entries]
        assert counts(sc.ledger) == counts(mem.ledger)
        assert mem.ledger.entries[-1]['duplicates'] > 400

def test_score_equals_in_memory(client, messy, tmp_path):
    "Quality on the cluster: per-record components (uniqueness and label trust being global) and the summary equal the in-memory `score`."
    path, df, schema = messy
    sc = scale.ingest(path, tmp_path/'out', schema=schema, blocksize=25_000)
    mem = ingest(path, schema=schema)
    data = pd.concat([sc.data.compute(), sc.data.compute().iloc[:50]])          # some repeated records, for uniqueness
    d = scale.as_dask(data, 150)                                               # over eight partitions: several buckets of hashes
    got, want = scale.score(d, schema, label='sex', keys=['pid']), score(data.reset_index(drop=True), schema, label='sex', keys=['pid'])
    pd.testing.assert_frame_equal(got.records.compute(), want.records)
    assert got.to_dict() == want.to_dict()
    assert (want.records['uniqueness'] < 1).sum() >= 100

def test_publish_through_dask_same_content(client, tmp_path, messy):
    "A hub whose settings say compute = dask publishes the same version as one that computes in memory."
    path, df, schema = messy
    local = __import__('leptonhub.platform.hub', fromlist=['Hub']).Hub.init(settings=get_settings(tmp_path/'local', compute='local'))
    remote = local.__class__.init(settings=get_settings(tmp_path/'dask', compute='dask'))
    kw = dict(schema=schema, keys=['pid'], label='sex', qi=['age', 'sex', 'city'])
    a, b = local.publish('people', path, **kw), remote.publish('people', path, blocksize=25_000, **kw)
    assert {k: v for k, v in a.items() if k != 'Q'} == {k: v for k, v in b.items() if k != 'Q'} and a['Q'] == pytest.approx(b['Q'], abs=1e-12)
    pd.testing.assert_frame_equal(local.read('people'), remote.read('people'))
    ca, cb = local.card('people'), remote.card('people')
    assert all(ca[k] == cb[k] for k in ('rows', 'columns', 'schema', 'quality', 'policy', 'provenance'))
    assert all(ca['score'][k] == pytest.approx(cb['score'][k], abs=1e-12) for k in ('E', 'Q', 'P', 'S', 'T'))
    assert not list((tmp_path/'dask').glob('.scale-*'))                       # the scratch folder is gone
