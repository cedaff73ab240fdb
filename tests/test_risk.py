"""`leptonhub.privacy.risk`: re-identification risk of k-anonymous releases (prosecutor risk ≤ 1/k, linkage S ≤ targets/k),
`covers` against a brute-force reading of structured labels, the linkage attack against a row-by-row attacker, and bad input."""
from __future__ import annotations
import re
import numpy as np, pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from leptonhub.core import InputError
from leptonhub.privacy.anonymize import METHODS, Hierarchy, anonymize
from leptonhub.privacy.risk import covers, equivalence_classes, linkage, record_risk, risk

def fast(n:int) -> settings:
    "Hypothesis settings: `n` examples, no per-example deadline."
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

QI = ['a', 'b', 'c']

@st.composite
def tables(draw, max_rows:int=40):
    "(table, k, method): small ints (negative too), a category, whole numbers with gaps; k between 1 and the table's size."
    n = draw(st.integers(1, max_rows))
    a = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    b = draw(st.lists(st.sampled_from(['x', 'y', 'z', 'w']), min_size=n, max_size=n))
    c = draw(st.lists(st.one_of(st.none(), st.integers(90, 110).map(float)), min_size=n, max_size=n))
    if all(v is None for v in c): c[0] = 100.0    # anonymize fails on a QI that is missing everywhere: see test_all_missing_qi
    df = pd.DataFrame({'a': a, 'b': b, 'c': pd.Series(c, dtype=float), 'y': np.arange(n)})
    return df, draw(st.integers(1, n)), draw(st.sampled_from(METHODS))

# ---------------------------------------------------------------- k-anonymity seen from the attacker

@fast(60)
@given(tables())
def test_release_risk_at_most_one_over_k(case):
    df, k, method = case
    res = anonymize(df, QI, k=k, method=method)
    r = record_risk(res.data, QI)
    assert (r[res.classes >= 0] <= 1 / k + 1e-12).all()
    assert (r[res.classes < 0] == 0).all()
    rk = risk(res.data, QI)
    assert rk['prosecutor_max'] <= 1 / k + 1e-12 and rk['records'] == len(df)
    assert rk['prosecutor_avg'] == pytest.approx(r.mean())
    assert rk['uniques'] == (0 if k > 1 else rk['uniques'])

@fast(60)
@given(tables())
def test_linkage_at_most_targets_over_k(case):
    df, k, method = case
    res = anonymize(df, QI, k=k, method=method)
    lk = linkage(df, res.data, QI)
    assert lk.hits == len(df)                       # every released row covers its own person
    assert lk.S <= len(df) / k + 1e-9 and 0 <= lk.P <= 1
    assert (lk.per_target.candidates >= k).all()
    sample = linkage(df, res.data, QI, n_targets=max(1, len(df) // 2), seed=3)
    assert sample.S <= sample.targets / k + 1e-9

@fast(40)
@given(tables())
def test_raw_linkage_is_sum_of_inverse_class_sizes(case):
    df = case[0]
    lk = linkage(df, df, QI)
    cls = equivalence_classes(df, QI)
    sizes = np.bincount(cls)[cls]
    assert lk.S == pytest.approx((1 / sizes).sum()) == pytest.approx(cls.max() + 1)
    assert lk.unique_matches == (sizes == 1).sum()
    assert risk(df, QI, population=df)['journalist_avg'] == pytest.approx(risk(df, QI)['prosecutor_avg'])

RANGE = re.compile(r'^(-?[0-9.]+)-(-?[0-9.]+)$')

def naive_covers(x, label, numeric:bool) -> bool:
    "One value against one label, read the obvious way (labels as anonymize writes them: `*`, missing, `v`, `lo-hi`, `a|b`)."
    if label == '*': return True
    if label is None or (isinstance(label, float) and np.isnan(label)): return x is None or (isinstance(x, float) and np.isnan(x))
    if x is None or (isinstance(x, float) and np.isnan(x)): return False
    for item in label.split('|'):
        if not numeric: hit = str(x) == item
        elif m := RANGE.match(item): hit = float(m[1]) <= x <= float(m[2])
        else: hit = float(item) == x
        if hit: return True
    return False

@fast(40)
@given(tables(max_rows=25), st.randoms(use_true_random=False))
def test_linkage_matches_row_by_row_attacker(case, rnd):
    "The vectorised attack agrees with an attacker who checks every target against every released row in plain Python."
    df, k, method = case
    released = anonymize(df, QI, k=k, method=method).data
    targets = rnd.sample(list(df.index), rnd.randint(1, len(df)))
    lk = linkage(df, released, QI, targets=targets)
    S = 0.0
    for t in targets:
        ok = [all(naive_covers(df.at[t, a], released.at[r, a], a != 'b') for a in QI) for r in released.index]
        assert lk.per_target.at[t, 'candidates'] == sum(ok)
        S += ok[released.index.get_loc(t)] / sum(ok)
    assert lk.S == pytest.approx(S)

@fast(30)
@given(tables(), st.integers(1, 7))
def test_blocks_do_not_change_the_counts(case, block):
    "Comparing (box, person) pairs a few at a time gives the same candidates and class sizes as all at once."
    import leptonhub.privacy.risk as R
    df, k, method = case
    released = anonymize(df, QI, k=k, method=method).data
    whole, whole_j = linkage(df, released, QI).per_target, record_risk(released, QI, 'journalist', df)
    saved, R._BLOCK = R._BLOCK, block
    try: pieces, pieces_j = linkage(df, released, QI).per_target, record_risk(released, QI, 'journalist', df)
    finally: R._BLOCK = saved
    pd.testing.assert_frame_equal(whole, pieces); pd.testing.assert_series_equal(whole_j, pieces_j)

@fast(30)
@given(tables())
def test_journalist_population_superset(case):
    df, k, method = case
    res = anonymize(df, QI, k=k, method=method)
    population = pd.concat([df, df.assign(a=df.a + 100)], ignore_index=True)    # strangers that no label covers
    j, p = record_risk(res.data, QI, 'journalist', population), record_risk(res.data, QI)
    assert (j <= p + 1e-12).all()
    assert risk(res.data, QI, population=population)['journalist_max'] <= 1 / k + 1e-12

# ---------------------------------------------------------------- covers against a brute-force reading

def fmt(x:float) -> str: return str(int(x)) if float(x).is_integer() else repr(x)

numbers = st.one_of(st.integers(-30, 30).map(float), st.integers(-300, 300).map(lambda i: i / 10))
numeric_labels = st.one_of(
    st.just(('*', None)), st.just((None, None)),
    st.lists(st.tuples(numbers, numbers).map(sorted), min_size=1, max_size=3).map(lambda iv: ('|'.join(fmt(lo) if lo == hi else f'{fmt(lo)}-{fmt(hi)}' for lo, hi in iv), iv)))

def expect_numeric(x, label, iv) -> bool:
    if label == '*': return True
    if label is None: return bool(np.isnan(x))
    return not np.isnan(x) and any(lo <= x <= hi for lo, hi in iv)

@fast(150)
@given(st.lists(st.tuples(st.one_of(numbers, st.just(float('nan'))), numeric_labels), min_size=1, max_size=30))
def test_covers_numbers(pairs):
    raw = [x for x, _ in pairs]; labels = [lab for _, (lab, _) in pairs]
    want = [expect_numeric(x, lab, iv) for x, (lab, iv) in pairs]
    assert covers(raw, labels).tolist() == want

cats = st.sampled_from(['a', 'b', 'c', 'd', 'e-f', '1.5'])
cat_labels = st.one_of(st.just(('*', None)), st.just((None, None)), st.sets(cats, min_size=1, max_size=4).map(lambda s: ('|'.join(sorted(s)), s)))

@fast(150)
@given(st.lists(st.tuples(st.one_of(cats, st.none()), cat_labels), min_size=1, max_size=30))
def test_covers_categories(pairs):
    raw = pd.Series([x for x, _ in pairs], dtype=object); labels = [lab for _, (lab, _) in pairs]
    want = [lab == '*' or (x is None if lab is None else x in s) for x, (lab, s) in pairs]
    assert covers(raw, labels).tolist() == want

@fast(60)
@given(st.lists(st.tuples(st.sampled_from(range(8)), st.sampled_from(range(3))), min_size=1, max_size=20), st.data())
def test_covers_hierarchy(pairs, data):
    "A random two-level hierarchy over leaves L0..L7: a label covers a leaf if the label is the leaf, its group, or `*`."
    group = {f'L{i}': f'G{g}' for i, g in pairs}
    h = Hierarchy(pd.DataFrame({0: list(group), 1: list(group.values())}))
    leaves = list(group)
    raw = data.draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=20))
    labels = data.draw(st.lists(st.sampled_from(leaves + sorted(set(group.values())) + ['*']), min_size=len(raw), max_size=len(raw)))
    want = [lab in ('*', x, group[x]) for x, lab in zip(raw, labels)]
    assert covers(raw, labels, h).tolist() == want

def test_covers_edge_labels():
    assert covers([-3, -6, -1], '-5--1').tolist() == [True, False, True]
    assert covers([0.5, 1.2, 1.21, 0.49], '0.5-1.2').tolist() == [True, True, False, False]
    assert covers([37, 37.5], '37').tolist() == [True, False]
    with pytest.raises(InputError, match='neither a number nor a range'): covers([1], '1-2-3')
    with pytest.raises(InputError, match='runs backwards'): covers([1], '5-1')

# ---------------------------------------------------------------- bad input

def test_bad_input():
    df = pd.DataFrame({'a': [1, 2, 3, 4], 'b': ['x', 'y', 'x', 'y']})
    with pytest.raises(InputError, match="no column 'zip'"): risk(df, ['a', 'zip'])
    with pytest.raises(InputError, match="no column 'zip'"): linkage(df, df, ['zip'])
    with pytest.raises(InputError, match="no column 'zip'"): record_risk(df, ['zip'])
    for bad in (0, -0.1, 1.01, 2, True, 'high', None):
        with pytest.raises(InputError, match=r'probability in \(0, 1\]'): risk(df, ['a'], threshold=bad)
    assert risk(df, ['a'], threshold=1)['records_above_threshold'] == 0
    with pytest.raises(InputError, match="population has no column 'b'"): risk(df, ['a', 'b'], population=df[['a']])
    with pytest.raises(InputError, match='needs the population'): record_risk(df, ['a'], 'journalist')
    with pytest.raises(InputError, match='contains every record'): risk(df, ['a'], population=df.iloc[:2])
    with pytest.raises(InputError, match='at least one quasi-identifier'): risk(df, [])
    with pytest.raises(InputError, match='not a row of the raw table'): linkage(df, df, ['a'], targets=[9])
    with pytest.raises(InputError, match='n_targets'): linkage(df, df, ['a'], n_targets=5)

def test_released_labels_cover_their_own_decimals():
    df = pd.DataFrame({'x': [0.1234567, 0.2, 0.3, 0.41]})
    res = anonymize(df, ['x'], k=2)
    assert covers(df.x, res.data.x).all()

def test_all_missing_qi():
    res = anonymize(pd.DataFrame({'c': [np.nan, np.nan]}), ['c'], k=1)
    assert risk(res.data, ['c'])['prosecutor_max'] <= 1
