"""`leptonhub.privacy.anonymize`: k-anonymity, l-diversity and t-closeness checked against independent reference computations.

Property tests draw small random tables (1-300 rows, 1-4 quasi-identifiers of mixed kinds, some missing values) and check every
guarantee `anonymize` claims on the released table itself; unit tests pin `diversity`, `closeness`, `ncp`, the hierarchies and
`pseudonymize` to hand-computed values; the last section feeds bad requests and expects one `InputError` that says what to change.
"""
from __future__ import annotations
import hashlib, hmac, math
from collections import Counter
import numpy as np, pandas as pd, pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from leptonhub.core import InputError, LeptonError
from leptonhub.privacy.anonymize import (L_KINDS, METHODS, Anonymized, Hierarchy, anonymize, closeness, diversity, ncp,
                                         pseudonymize)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = ('int_few', 'int_many', 'float', 'cat', 'category', 'Int64')
EPS = 1e-9

# ---------------------------------------------------------------- table generation

def make_table(n:int, kinds:list[str], missing:list[bool], seed:int, outliers:int=0) -> tuple[pd.DataFrame, list[str]]:
    "A table of `n` rows with one QI per kind (some with missing values, never all missing) and a few non-QI columns, on a shuffled index; `outliers` rows get extreme numbers."
    rng = np.random.default_rng(seed)
    cols, far = {}, rng.choice(n, min(outliers, n), replace=False)
    for j, (kind, miss) in enumerate(zip(kinds, missing)):
        if kind == 'int_few': v = pd.Series(rng.integers(0, 3, n), dtype=float if miss else 'int64')
        elif kind == 'int_many': v = pd.Series(rng.integers(-50, 1000, n), dtype=float if miss else 'int64')
        elif kind == 'float': v = pd.Series(np.round(rng.normal(0, 40, n), 2))
        elif kind == 'cat': v = pd.Series(rng.choice(['north', 'south', 'east', 'west', 'mid'][:rng.integers(1, 6)], n), dtype=object)
        elif kind == 'category': v = pd.Series(pd.Categorical(rng.choice(list('abcdefgh'), n), categories=list('hgfedcba')))
        else: v = pd.Series(pd.array(rng.integers(0, 40, n), dtype='Int64'))
        if kind in ('int_few', 'int_many', 'float', 'Int64') and len(far): v.iloc[far] = rng.integers(10_000, 100_000, len(far))
        if miss and n > 1:
            holes = rng.random(n) < 0.15
            holes[rng.integers(n)] = False                                   # never a wholly missing column (see the dedicated test)
            v = v.mask(holes)
        cols[f'q{j}_{kind}'] = v.to_numpy() if kind not in ('category', 'Int64') else v.array
    idx = pd.Index(rng.permutation(n) * 3 + 100, name='rid')
    df = pd.DataFrame({'id': np.arange(n) * 7, **cols, 'note': [f'n{i % 5}' for i in range(n)],
                       'x': np.where(rng.random(n) < 0.2, np.nan, rng.random(n))}, index=idx)
    return df, list(cols)

@st.composite
def tables(draw, max_rows:int=300):
    n = draw(st.integers(1, max_rows))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    missing = draw(st.lists(st.booleans(), min_size=len(kinds), max_size=len(kinds)))
    return make_table(n, kinds, missing, draw(st.integers(0, 2**32 - 1)), outliers=draw(st.sampled_from([0, 0, 1, 2, 3])))

suppressions = st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.2, 1.0]), st.floats(0, 1))

def run(df, qi, k, ms, **kw) -> Anonymized:
    return anonymize(df, qi, k=k, **kw) if ms is None else anonymize(df, qi, k=k, max_suppression=ms, **kw)

# ---------------------------------------------------------------- independent references

def is_numeric(s:pd.Series) -> bool: return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)

def parse_range(label:str) -> list[tuple[float, float]]:
    "Every way to read `label` as a number or a range `lo-hi` (negative numbers and exponents make '-' ambiguous)."
    try: return [(float(label), float(label))]
    except ValueError: pass
    out = []
    for i, ch in enumerate(label):
        if ch == '-' and i > 0:
            try: out.append((float(label[:i]), float(label[i + 1:])))
            except ValueError: pass
    return out

def as_leaves(raw:pd.Series) -> set[str]:
    "Raw values as hierarchy leaves are written: numbers without a spurious '.0' (37.0 -> '37'), everything else as text."
    if not is_numeric(raw): return set(raw.astype(str))
    return {str(int(x)) if float(x).is_integer() else repr(float(x)) for x in raw}

def covers(label, raw:pd.Series, numeric:bool, hierarchy:Hierarchy|None=None) -> bool:
    "Does the released `label` stand for every raw value of the class?"
    if isinstance(label, str) and label == '*': return True
    if label is None or (not isinstance(label, str) and pd.isna(label)): return bool(raw.isna().all())
    if raw.isna().any(): return False
    if hierarchy is not None: return as_leaves(raw) <= node_leaves(hierarchy).get(label, set())
    if numeric:
        vals = raw.astype(float)
        return any(lo <= vals.min() and vals.max() <= hi for lo, hi in parse_range(label))
    return set(raw.astype(str)) <= set(label.split('|'))

_NODES = {}
def node_leaves(h:Hierarchy) -> dict[str, set]:
    "Every node of `h` (any level) and the leaves under it, read straight off the table."
    if id(h) not in _NODES:
        rows = h.table.to_numpy()
        nodes = {}
        for row in rows:
            for node in row: nodes.setdefault(node, set()).add(row[0])
        _NODES[id(h)] = (h, nodes)
    return _NODES[id(h)][1]

def ref_ncp(df:pd.DataFrame, qi:list[str], classes:np.ndarray, hierarchies:dict|None=None) -> tuple[float, dict]:
    "NCP by its definition: per record and attribute, the share of the domain its class covers; a suppressed record, or a class mixing missing and present values, costs 1."
    n, per = len(df), {}
    for a in qi:
        s, h = df[a], (hierarchies or {}).get(a)
        present = s.dropna()
        size = len(h.leaves) if h is not None else present.nunique()
        total = float((classes < 0).sum())
        for c in np.unique(classes[classes >= 0]):
            v = s[classes == c]
            if v.isna().all(): cost = 0.0
            elif v.isna().any(): cost = 1.0
            elif size <= 1: cost = 0.0
            elif h is not None:                                              # the smallest node whose leaves hold the class
                need = as_leaves(v)
                cost = (min(len(leaves) for leaves in node_leaves(h).values() if need <= leaves) - 1) / (size - 1)
            elif is_numeric(s):
                span = float(present.max()) - float(present.min())
                cost = (float(v.max()) - float(v.min())) / span if span > 0 else 0.0
            else: cost = (v.nunique() - 1) / (size - 1)
            total += cost * len(v)
        per[a] = total / n
    return float(np.mean(list(per.values()))), per

def ref_diversity(values, kind:str, c:float=1.0) -> float:
    "The l a class of sensitive `values` reaches: distinct values, exp(Shannon entropy), or the largest l with r1 < c (r_l + ... + r_m)."
    counts = sorted(Counter(values).values(), reverse=True)
    if kind == 'distinct': return float(len(counts))
    if kind == 'entropy':
        tot = sum(counts)
        return math.exp(-sum(x / tot * math.log(x / tot) for x in counts))
    best = 1
    for l in range(2, len(counts) + 1):
        if counts[0] < c * sum(counts[l - 1:]): best = l
    return float(best)

def ref_emd(values, table_values, ordered:bool) -> float:
    "Earth mover's distance from the class distribution to the table's: half the L1 distance for categories, cumulative differences / (m - 1) for ordered values."
    domain = sorted(set(table_values))
    p, q = Counter(values), Counter(table_values)
    pv = np.array([p[v] / len(values) for v in domain])
    qv = np.array([q[v] / len(table_values) for v in domain])
    if not ordered: return float(0.5 * np.abs(pv - qv).sum())
    return float(np.abs(np.cumsum(pv - qv)).sum() / (len(domain) - 1)) if len(domain) > 1 else 0.0

# ---------------------------------------------------------------- the release checks

def check_release(df:pd.DataFrame, qi:list[str], res:Anonymized, k:int, ms:float|None, hierarchies:dict|None=None):
    "Every guarantee and figure of `res` re-derived from the released table and the raw one."
    n = len(df)
    out, cls = res.data, np.asarray(res.classes)
    # same rows, same order, same index; non-QI columns untouched
    assert len(out) == n and cls.shape == (n,)
    assert out.index.equals(df.index)
    assert list(out.columns) == list(df.columns)
    for col in df.columns:
        if col not in qi: pd.testing.assert_series_equal(out[col], df[col])
    # suppression
    assert ((cls >= 0) | (cls == -1)).all()
    supp = cls == -1
    assert res.suppressed == int(supp.sum())
    assert res.suppressed <= math.floor((ms or 0.0) * n)
    if supp.any(): assert (out.loc[supp, qi] == '*').all().all()
    # class sizes and k
    sizes = pd.Series(cls[~supp]).value_counts()
    assert len(sizes) > 0 or n == 0
    if len(sizes): assert sizes.min() >= k, f'a class of {sizes.min()} rows < k = {k}'
    assert res.k == (int(sizes.min()) if len(sizes) else 0)
    assert sorted(res.class_sizes.to_dict().items()) == sorted(sizes.to_dict().items())
    assert res.summary()['classes'] == len(sizes) and res.summary()['suppressed'] == res.suppressed
    # k-anonymity of the released table itself: rows with the same released QI labels (the suppressed rows, all '*', included) number at least k
    released = out[qi].astype(object).where(out[qi].notna(), '<missing>')
    assert released.value_counts().min() >= k, f'a released QI combination is shared by only {released.value_counts().min()} rows < k = {k}'
    # one label per class and attribute, covering every raw value of the class
    for c in sizes.index:
        rows = cls == c
        for a in qi:
            labels = out.loc[rows, a]
            assert labels.nunique(dropna=False) == 1, f'class {c} has labels {set(labels)} on {a!r}'
            label = labels.iloc[0]
            assert covers(label, df.loc[rows, a], is_numeric(df[a]), (hierarchies or {}).get(a)), \
                f'label {label!r} of class {c} on {a!r} does not cover {sorted(map(str, df.loc[rows, a]))}'
    # information loss
    assert 0.0 <= res.ncp <= 1.0 + EPS and all(0.0 <= v <= 1.0 + EPS for v in res.ncp_by_attribute.values())
    total, per = ncp(df, qi, res.classes, hierarchies)
    assert res.ncp == pytest.approx(total) and res.ncp_by_attribute == pytest.approx(per)
    rtotal, rper = ref_ncp(df, qi, cls, hierarchies)
    assert res.ncp == pytest.approx(rtotal, abs=1e-9) and res.ncp_by_attribute == pytest.approx(rper, abs=1e-9)

def check_sensitive(df, sensitive, res:Anonymized, l, l_kind, c, t, ordered:bool):
    "Every non-suppressed class reaches `l` and `t`, and `res.l` / `res.t` are the true worst values."
    cls = np.asarray(res.classes)
    table = df[sensitive].tolist()
    per_class = [df[sensitive][cls == g].tolist() for g in np.unique(cls[cls >= 0])]
    if l:
        ls = [ref_diversity(v, l_kind, c) for v in per_class]
        assert min(ls) >= l - EPS, f'a class reaches only l = {min(ls)} < {l} ({l_kind}, c={c})'
        assert res.l == pytest.approx(min(ls))
    else: assert res.l is None
    if t is not None:
        ts = [ref_emd(v, table, ordered) for v in per_class]
        assert max(ts) <= t + EPS, f'a class is at distance {max(ts)} > t = {t} from the table'
        assert res.t == pytest.approx(max(ts))
    else: assert res.t is None

# ---------------------------------------------------------------- k-anonymity properties

@settings(max_examples=150, **SETTINGS)
@given(tables(), st.integers(1, 12), st.sampled_from(METHODS), suppressions)
def test_k_anonymity_properties(table, k, method, ms):
    df, qi = table
    if k > len(df):
        with pytest.raises(InputError, match='larger than the table'): run(df, qi, k, ms, method=method)
        return
    res = run(df, qi, k, ms, method=method)
    check_release(df, qi, res, k, ms)
    assert res.policy['method'] == method and res.policy['k'] == k and res.policy['qi'] == qi

@pytest.mark.parametrize('method', METHODS)
def test_every_method_on_a_fixed_table(method):
    df, qi = make_table(300, ['int_many', 'cat', 'float', 'int_few'], [True, False, True, False], seed=1)
    for k in (1, 2, 5, 12):
        res = anonymize(df, qi, k=k, method=method)
        check_release(df, qi, res, k, None)
    # larger k loses more information on the same table (Mondrian only ever merges more)
    assert anonymize(df, qi, k=2, method=method).ncp <= anonymize(df, qi, k=50, method=method).ncp

def test_k_one_on_distinct_rows_releases_exact_values():
    df = pd.DataFrame({'age': [30, 41, 52, 63], 'city': ['a', 'b', 'c', 'd']})
    res = anonymize(df, ['age', 'city'], k=1)
    assert res.data['age'].tolist() == ['30', '41', '52', '63'] and res.data['city'].tolist() == ['a', 'b', 'c', 'd']
    assert res.ncp == 0.0 and res.k == 1 and res.suppressed == 0

def test_small_table_is_one_class():
    df = pd.DataFrame({'age': [30, 40, 50], 'sex': ['F', 'M', 'F']})
    res = anonymize(df, ['age', 'sex'], k=2)                       # 3 < 2k: no cut possible
    assert res.data['age'].tolist() == ['30-50'] * 3 and res.data['sex'].tolist() == ['*'] * 3
    assert res.k == 3 and res.ncp == pytest.approx(1.0) and set(res.classes) == {0}

def test_suppression_is_counted_and_starred():
    # 20 rows at age 1, one outlier: strict Mondrian cannot cut 21 rows at k=10 without suppressing the outlier side
    df = pd.DataFrame({'age': [1] * 10 + [2] * 10 + [1000], 'v': range(21)})
    res = anonymize(df, ['age'], k=10, method='mondrian-strict', max_suppression=0.1)
    check_release(df, ['age'], res, 10, 0.1)
    none = anonymize(df, ['age'], k=10, method='mondrian-strict')
    assert none.suppressed == 0 and res.ncp <= none.ncp

def test_all_missing_qi_column_does_not_crash():
    "A QI that is missing in every row (an unfilled form field) must release, not raise IndexError."
    for col in ([np.nan] * 6, [None] * 6, pd.Categorical([None] * 6, categories=['x']), pd.array([None] * 6, dtype='Int64')):
        df = pd.DataFrame({'a': col, 'b': [1, 2, 3, 4, 5, 6]})
        res = anonymize(df, ['a', 'b'], k=2)
        check_release(df, ['a', 'b'], res, 2, None)

def test_float_labels_cover_raw_values():
    "A released range must contain the raw numbers: labels rounded to 6 significant digits do not (0.1234567 is not in '0.123457-0.5')."
    df = pd.DataFrame({'a': [0.1234567, 0.5, 0.6, 0.9876543, 1234567.8, 1234567.9]})
    for k in (1, 2):
        res = anonymize(df, ['a'], k=k)
        check_release(df, ['a'], res, k, None)

@pytest.mark.parametrize('kind', ['int_many', 'cat', 'float'])
def test_k_larger_than_rows_is_input_error(kind):
    df, qi = make_table(5, [kind], [False], seed=3)
    for k in (6, 100):
        with pytest.raises(InputError, match='larger than the table'): anonymize(df, qi, k=k)
    with pytest.raises(InputError): anonymize(df.iloc[:0], qi, k=1)

# ---------------------------------------------------------------- l-diversity and t-closeness properties

def with_sensitive(df:pd.DataFrame, kind:str, seed:int) -> pd.DataFrame:
    "Add a sensitive column `s` correlated with the first QI so that the constraints bind: categories (`cat`) or numbers (`num`)."
    rng = np.random.default_rng(seed)
    n, m = len(df), int(rng.integers(1, 7))
    key = pd.Series(df.iloc[:, 1]).rank(method='first').fillna(0).to_numpy() / max(n, 1)
    p = rng.dirichlet(np.ones(m) * 0.7)
    drawn = rng.choice(m, n, p=p)
    code = np.where(rng.random(n) < 0.5, np.minimum((key * m).astype(int), m - 1), drawn)
    s = np.array(['flu', 'cancer', 'hiv', 'none', 'cold', 'ulcer'], dtype=object)[code] if kind == 'cat' else code * 10 + 5
    return df.assign(s=s)

def expect_release(df, qi, k, ms, sensitive, l, l_kind, c, t, method):
    "Run anonymize with the constraint; InputError exactly when the whole table cannot reach l (t is always reachable: distance 0)."
    ordered = is_numeric(df[sensitive])
    whole_ok = not l or ref_diversity(df[sensitive].tolist(), l_kind, c) >= l - EPS
    kw = dict(sensitive=sensitive, l=l, l_kind=l_kind, c=c, t=t, method=method)
    if not whole_ok:
        with pytest.raises(InputError, match='no grouping can reach'): run(df, qi, k, ms, **kw)
        return None
    res = run(df, qi, k, ms, **kw)
    check_release(df, qi, res, k, ms)
    check_sensitive(df, sensitive, res, l, l_kind, c, t, ordered)
    return res

@settings(max_examples=120, **SETTINGS)
@given(tables(max_rows=200), st.integers(1, 8), st.sampled_from(METHODS), suppressions, st.sampled_from(['cat', 'num']),
       st.sampled_from([2, 3]), st.sampled_from([('distinct', 1), ('entropy', 1), ('recursive', 1), ('recursive', 2), ('recursive', 3)]),
       st.integers(0, 2**32 - 1))
def test_l_diversity_properties(table, k, method, ms, skind, l, kind_c, seed):
    df, qi = table
    if k > len(df): return
    df = with_sensitive(df, skind, seed)
    expect_release(df, qi, k, ms, 's', l, kind_c[0], kind_c[1], None, method)

@settings(max_examples=80, **SETTINGS)
@given(tables(max_rows=200), st.integers(1, 8), st.sampled_from(METHODS), suppressions, st.sampled_from([0.2, 0.4]),
       st.sampled_from([None, 2]), st.integers(0, 2**32 - 1))
def test_t_closeness_categorical_properties(table, k, method, ms, t, l, seed):
    df, qi = table
    if k > len(df): return
    expect_release(with_sensitive(df, 'cat', seed), qi, k, ms, 's', l, 'distinct', 1.0, t, method)

@settings(max_examples=80, **SETTINGS)
@given(tables(max_rows=200), st.integers(1, 8), st.sampled_from(METHODS), suppressions, st.sampled_from([0.2, 0.4]),
       st.integers(0, 2**32 - 1))
def test_t_closeness_ordered_properties(table, k, method, ms, t, seed):
    df, qi = table
    if k > len(df): return
    expect_release(with_sensitive(df, 'num', seed), qi, k, ms, 's', None, 'distinct', 1.0, t, method)

GRID_TABLE = make_table(240, ['int_many', 'cat', 'float'], [False, True, False], seed=11)

@pytest.mark.parametrize('skind', ['cat', 'num'])
@pytest.mark.parametrize('l_kind,c', [('distinct', 1), ('entropy', 1), ('recursive', 1), ('recursive', 2), ('recursive', 3)])
@pytest.mark.parametrize('l', [2, 3])
def test_l_diversity_grid(l, l_kind, c, skind):
    df, qi = GRID_TABLE
    df = with_sensitive(df, skind, seed=5)
    for method in METHODS:
        for k, ms in ((2, None), (5, 0.05)):
            expect_release(df, qi, k, ms, 's', l, l_kind, c, None, method)

@pytest.mark.parametrize('skind', ['cat', 'num'])
@pytest.mark.parametrize('t', [0.2, 0.4])
def test_t_closeness_grid(t, skind):
    df, qi = GRID_TABLE
    df = with_sensitive(df, skind, seed=5)
    for method in METHODS:
        for k, ms in ((2, None), (5, 0.05)):
            res = expect_release(df, qi, k, ms, 's', None, 'distinct', 1.0, t, method)
            assert res is not None

def test_ordered_t_closeness_minimal():
    "Sensitive 0/1 perfectly sorted with the QI: each half has EMD |1 - 0.5| / (2 - 1) = 0.5 > 0.4, so the table must stay whole."
    df = pd.DataFrame({'a': range(10), 's': [0] * 5 + [1] * 5})
    res = anonymize(df, ['a'], k=2, sensitive='s', t=0.4)
    check_sensitive(df, 's', res, None, 'distinct', 1.0, 0.4, ordered=True)
    assert res.t <= 0.4

def test_l_unreachable_by_whole_table():
    df = pd.DataFrame({'a': range(10), 's': ['x'] * 8 + ['y', 'z']})      # counts 8, 1, 1
    assert anonymize(df, ['a'], k=2, sensitive='s', l=3).l == 3              # distinct: the whole table has 3 values
    # entropy: exp H(0.8, 0.1, 0.1) = 1.89 < 2;  recursive: 8 ≥ 1·(1+1);  8 ≥ 3·(1+1);  8 ≥ 3·1
    for l, kind, c in ((2, 'entropy', 1), (2, 'recursive', 1), (2, 'recursive', 3), (3, 'recursive', 3)):
        with pytest.raises(InputError, match=f'no grouping can reach l = {l}'): anonymize(df, ['a'], k=2, sensitive='s', l=l, l_kind=kind, c=c)
    assert anonymize(df, ['a'], k=2, sensitive='s', l=2, l_kind='recursive', c=5).l >= 2   # 8 < 5·2

def test_entropy_l_reached_exactly_by_whole_table():
    "Three equally frequent values: exp H = 3 exactly, but in floating point 2.9999999999999996 — l = 3 must not be refused."
    df = pd.DataFrame({'a': range(6), 's': list('abcabc')})
    res = anonymize(df, ['a'], k=2, sensitive='s', l=3, l_kind='entropy')
    check_sensitive(df, 's', res, 3, 'entropy', 1.0, None, ordered=False)
    assert res.l == pytest.approx(3.0)

# ---------------------------------------------------------------- diversity / closeness / ncp by hand

def test_diversity_by_hand():
    cnt = np.array([[4, 2, 2, 0], [1, 1, 1, 1], [6, 0, 0, 0]])
    assert diversity(cnt, 'distinct').tolist() == [3, 4, 1]
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, exp H = 2^1.5; uniform over 4: exp H = 4; one value: 1
    assert diversity(cnt, 'entropy') == pytest.approx([2 ** 1.5, 4.0, 1.0])
    # r = 4,2,2: l=2 needs 4 < c·4, l=3 needs 4 < c·2;  r = 1,1,1,1: l needs 1 < c·(5 - l)
    assert diversity(cnt, 'recursive', c=1).tolist() == [1, 3, 1]
    assert diversity(cnt, 'recursive', c=2).tolist() == [2, 4, 1]
    assert diversity(cnt, 'recursive', c=3).tolist() == [3, 4, 1]
    for kind in L_KINDS:
        for c in (1, 2, 3):
            assert diversity(cnt, kind, c) == pytest.approx([ref_diversity(Counter({i: x for i, x in enumerate(r) if x}).elements(), kind, c) for r in cnt])

def test_closeness_by_hand():
    overall = np.array([1, 1, 2])                                            # q = 1/4, 1/4, 1/2
    cnt = np.array([[2, 0, 0], [0, 0, 4], [1, 1, 2]])
    # categorical: half the L1 distance
    assert closeness(cnt, overall, ordered=False) == pytest.approx([0.75, 0.5, 0.0])
    # ordered: p - q cumulated = (3/4, 1/2, 0) -> 1.25 / 2;  (-1/4, -1/2, 0) -> 0.75 / 2
    assert closeness(cnt, overall, ordered=True) == pytest.approx([0.625, 0.375, 0.0])
    assert closeness(np.array([[3, 0]]), np.array([1, 1]), ordered=True) == pytest.approx([0.5])

def test_ncp_by_hand():
    df = pd.DataFrame({'age': [20, 30, 40, 60], 'city': ['A', 'B', 'A', 'C']})
    # age: class 0 spans 10 of 40 (2 rows), class 1 one value, one suppressed row: (2·0.25 + 0 + 1) / 4
    # city: class 0 {A, B}: (2-1)/(3-1) on 2 rows, suppressed row 1: (1 + 1) / 4
    total, per = ncp(df, ['age', 'city'], np.array([0, 0, 1, -1]))
    assert per == pytest.approx({'age': 0.375, 'city': 0.5}) and total == pytest.approx(0.4375)
    assert ncp(df, ['age', 'city'], np.array([0, 1, 2, 3]))[0] == 0.0
    assert ncp(df, ['age', 'city'], np.array([-1] * 4))[0] == 1.0
    total, per = ncp(df, ['age', 'city'], np.array([0] * 4))
    assert total == pytest.approx(1.0) and per == pytest.approx({'age': 1.0, 'city': 1.0})
    assert ncp(df, ['age', 'city'], np.array([7, 7, 3, -1])) == ncp(df, ['age', 'city'], np.array([0, 0, 1, -1]))   # any class ids
    # a class mixing a missing and a present value costs 1; an all-missing class costs nothing
    m = pd.DataFrame({'a': [1, np.nan, 3, 5, np.nan, np.nan]})
    assert ncp(m, ['a'], np.array([0, 0, 1, 1, 2, 2]))[1]['a'] == pytest.approx((2 * 1 + 2 * 0.5 + 0) / 6)

# ---------------------------------------------------------------- hierarchies

ARX = 'Budapest;Hungary;Europe;*\nSzeged;Hungary;Europe;*\nVienna;Austria;Europe;*\nLima;Peru;America;*\n'

def test_from_arx_and_lca(tmp_path):
    path = tmp_path / 'city.csv'
    path.write_text(ARX)
    h = Hierarchy.from_arx(path)
    assert h.height == 3 and h.table.shape == (4, 4)
    assert sorted(h.leaves) == ['Budapest', 'Lima', 'Szeged', 'Vienna']
    assert h.table.set_index(0).loc['Szeged'].tolist() == ['Hungary', 'Europe', '*']
    code = h.code
    lab, size = h.lca(np.array([code['Budapest'], code['Vienna'], code['Lima'], code['Szeged']]),
                      np.array([code['Szeged'], code['Szeged'], code['Budapest'], code['Szeged']]))
    assert lab.tolist() == ['Hungary', 'Europe', '*', 'Szeged'] and size.tolist() == [2, 3, 4, 1]
    assert h.leaves_under('Europe') == {'Budapest', 'Szeged', 'Vienna'} and h.leaves_under('*') == set(h.leaves)
    assert h.leaves_under('Peru') == {'Lima'} and h.leaves_under('Lima') == {'Lima'}
    # every subtree is a contiguous run of codes
    for label in ('Hungary', 'Europe', 'Austria'):
        codes = sorted(code[v] for v in h.leaves_under(label))
        assert codes == list(range(codes[0], codes[-1] + 1))
    # a file without the final '*' level gets one; another separator
    (tmp_path / 'b.csv').write_text('a,x\nb,x\nc,y\n')
    hb = Hierarchy.from_arx(tmp_path / 'b.csv', sep=',')
    assert hb.height == 2 and hb.table.iloc[:, -1].eq('*').all()

def test_from_arx_bad_files(tmp_path):
    with pytest.raises(InputError, match='cannot read hierarchy'): Hierarchy.from_arx(tmp_path / 'absent.csv')
    (tmp_path / 'dup.csv').write_text('a;x;*\na;y;*\n')
    with pytest.raises(InputError, match="lists a value twice: 'a'"): Hierarchy.from_arx(tmp_path / 'dup.csv')

def test_hierarchy_in_anonymize(tmp_path):
    (tmp_path / 'city.csv').write_text(ARX)
    h = Hierarchy.from_arx(tmp_path / 'city.csv')
    rng = np.random.default_rng(2)
    df = pd.DataFrame({'city': rng.choice(h.leaves, 120), 'age': rng.integers(18, 90, 120)})
    hs = {'city': h, 'age': Hierarchy.intervals(df.age)}
    for method in METHODS:
        for k in (1, 3, 10):
            res = anonymize(df, ['city', 'age'], k=k, hierarchies=hs, method=method)
            check_release(df, ['city', 'age'], res, k, None, hs)
            nodes = set(h.table.to_numpy().ravel())
            assert set(res.data.city) <= nodes
    # an uncovered value names the column and the value
    bad = df.assign(city=['Paris'] + df.city.tolist()[1:])
    with pytest.raises(InputError) as e: anonymize(bad, ['city'], k=2, hierarchies={'city': h})
    assert e.value.column == 'city' and "'city'" in str(e.value) and 'Paris' in str(e.value) and 'does not cover' in str(e.value)
    # missing values are not 'uncovered'
    res = anonymize(df.assign(city=[None] + df.city.tolist()[1:]), ['city'], k=2, hierarchies={'city': h})
    assert len(res.data) == len(df)

@settings(max_examples=40, **SETTINGS)
@given(st.integers(1, 150), st.integers(1, 8), st.sampled_from(METHODS), suppressions, st.sampled_from([(5, 10, 20), (2, 50), (7,)]),
       st.integers(0, 2**32 - 1))
def test_hierarchy_properties(n, k, method, ms, widths, seed):
    "With ARX, interval and prefix hierarchies every label is a node of its hierarchy and its leaves hold the class's values."
    if k > n: return
    rng = np.random.default_rng(seed)
    city = Hierarchy(pd.DataFrame([r.split(';') for r in ARX.split()]))
    df = pd.DataFrame({'city': rng.choice(city.leaves, n), 'age': rng.integers(0, 100, n),
                       'zip': rng.choice(['94110', '94117', '94301', '10001', '10003', '60614'], n), 'y': rng.random(n)})
    df.loc[rng.random(n) < 0.1, 'city'] = None
    hs = {'city': city, 'age': Hierarchy.intervals(df.age, widths=widths), 'zip': Hierarchy.prefixes(df.zip)}
    res = run(df, ['city', 'age', 'zip'], k, ms, hierarchies=hs, method=method)
    check_release(df, ['city', 'age', 'zip'], res, k, ms, hs)
    for a, h in hs.items():
        assert set(res.data[a].dropna()) <= set(node_leaves(h)) | {'*'}

def test_intervals_shape():
    h = Hierarchy.intervals([23, 37, 38, 61, np.nan])
    assert h.table.shape == (4, 5) and h.height == 4 and sorted(h.leaves) == ['23', '37', '38', '61']
    assert h.table.set_index(0).loc['37'].tolist() == ['35-39', '30-39', '20-39', '*']
    assert h.table.set_index(0).loc['61'].tolist() == ['60-64', '60-69', '60-79', '*']
    lab, size = h.lca(np.array([h.code['37']]), np.array([h.code['38']]))
    assert lab.tolist() == ['35-39'] and size.tolist() == [2]
    f = Hierarchy.intervals([0.3, 1.7], widths=(0.5, 2))
    assert f.table.set_index(0).loc['0.3'].tolist() == ['[0, 0.5)', '0-1', '*']
    assert f.table.set_index(0).loc['1.7'].tolist() == ['[1.5, 2)', '0-1', '*']

def test_intervals_hierarchy_fits_float_column():
    "Hierarchy.intervals(df.age) must be usable for df.age itself when the column is float (ints with a missing value, say)."
    df = pd.DataFrame({'age': [37.0, 38.0, 61.0, np.nan, 23.0, 30.0]})
    hs = {'age': Hierarchy.intervals(df.age)}
    for k in (1, 2, 3):
        check_release(df, ['age'], anonymize(df, ['age'], k=k, hierarchies=hs), k, None, hs)

def test_dates_shape():
    d = ['2024-03-05', '2024-03-20', '2023-12-31', None]
    h = Hierarchy.dates(d)
    assert h.table.shape == (3, 4) and h.height == 3
    assert h.table.set_index(0).loc['2024-03-05'].tolist() == ['2024-03', '2024', '*']
    lab, size = h.lca(np.array([h.code['2024-03-05'], h.code['2023-12-31']]), np.array([h.code['2024-03-20'], h.code['2024-03-20']]))
    assert lab.tolist() == ['2024-03', '*'] and size.tolist() == [2, 3]

def test_dates_hierarchy_fits_datetime_column():
    "Hierarchy.dates(df.d) must be usable for the datetime column df.d itself (and for the same dates held as text)."
    df = pd.DataFrame({'d': pd.to_datetime(['2024-03-05', '2024-03-20'] * 3)})
    res = anonymize(df, ['d'], k=3, hierarchies={'d': Hierarchy.dates(df.d)})
    assert set(res.data.d) == {'2024-03-05', '2024-03-20'}
    both = anonymize(df, ['d'], k=6, hierarchies={'d': Hierarchy.dates(df.d)})
    assert set(both.data.d) == {'2024-03'}
    text = df.assign(d=df.d.dt.strftime('%Y-%m-%d'))
    assert set(anonymize(text, ['d'], k=6, hierarchies={'d': Hierarchy.dates(text.d)}).data.d) == {'2024-03'}

def test_prefixes_shape():
    h = Hierarchy.prefixes(['94110', '94117', '10001', None])
    assert h.table.shape == (3, 6) and h.height == 5
    assert h.table.set_index(0).loc['94110'].tolist() == ['9411*', '941**', '94***', '9****', '*']
    lab, size = h.lca(np.array([h.code['94110'], h.code['10001']]), np.array([h.code['94117'], h.code['94117']]))
    assert lab.tolist() == ['9411*', '*'] and size.tolist() == [2, 3]
    k2 = Hierarchy.prefixes(['94110', '94117'], keep=[3])
    assert k2.height == 2 and k2.table.iloc[:, 1].tolist() == ['941**', '941**']

# ---------------------------------------------------------------- pseudonyms

def test_pseudonymize():
    key, other = b'k' * 32, b'x' * 32
    vals = pd.Series(['deadbeef01', 'P-002', 'deadbeef01', None, 'patient 7', 'cafe'], index=[5, 6, 7, 8, 9, 10], name='pid')
    ps = pseudonymize(vals, key)
    assert ps.index.equals(vals.index) and ps.name == 'pid'
    assert ps[5] == ps[7] and ps[5] != ps[6] and pd.isna(ps[8])
    assert ps.dropna().nunique() == 4 and all(len(p) == 16 and set(p) <= set('0123456789abcdef') for p in ps.dropna())
    assert ps[5] == hmac.new(key, b'deadbeef01', hashlib.sha256).hexdigest()[:16]
    for raw, p in zip(vals, ps):
        if not pd.isna(raw): assert isinstance(p, str) and raw not in p and p not in raw
    again = pseudonymize(vals.iloc[::-1], key)                       # stable: the same value, the same pseudonym, in any order or batch
    assert again.reindex(vals.index).equals(ps)
    assert pseudonymize(pd.Series(['P-002']), key)[0] == ps[6]
    o = pseudonymize(vals, other)
    assert all(a != b for a, b in zip(ps.dropna(), o.dropna())) and pd.isna(o[8])
    assert len(pseudonymize(vals, key, length=32)[5]) == 32 and pseudonymize(vals, key, length=32)[5].startswith(ps[5])
    assert pseudonymize(pd.Series([np.nan, None]), key).isna().all()

def test_drop_and_pseudonyms_in_anonymize():
    df = pd.DataFrame({'name': list('abcdef'), 'pid': ['p1', 'p2', 'p1', 'p3', 'p4', 'p5'], 'age': [30, 31, 32, 50, 51, 52]})
    res = anonymize(df, ['age'], k=3, drop=['name'], pseudonyms={'pid': b'k' * 32})
    assert list(res.data.columns) == ['pid', 'age'] and 'name' not in res.data
    assert res.data.pid.tolist() == pseudonymize(df.pid, b'k' * 32).tolist() and res.data.pid[0] == res.data.pid[2]
    assert res.policy['drop'] == ['name'] and res.policy['pseudonymized'] == ['pid']

# ---------------------------------------------------------------- bad requests

def fails(fn, says:str) -> InputError:
    "`fn()` raises exactly one InputError whose message contains `says`."
    with pytest.raises(Exception) as info: fn()
    assert isinstance(info.value, InputError), f'expected InputError, got {type(info.value).__name__}: {info.value}'
    assert says in str(info.value), str(info.value)
    return info.value

BAD = pd.DataFrame({'age': [30, 40, 50, 60, 35, 45], 'sex': list('FMFMFM'), 'dx': ['flu', 'flu', 'hiv', 'flu', 'hiv', 'flu']})

def test_bad_requests():
    QI = ['age', 'sex']
    e = fails(lambda: anonymize(BAD, ['age', 'zip']), "no column 'zip'")
    assert e.column == 'zip' and "'age'" in str(e)                                      # lists the columns there are
    fails(lambda: anonymize(BAD, QI, k=2, sensitive='diagnosis', l=2), "no column 'diagnosis'")
    fails(lambda: anonymize(BAD, [], k=2), 'at least one quasi-identifier')
    for k in (0, -3):
        fails(lambda: anonymize(BAD, QI, k=k), 'at least 1')
    for k in (2.5, '3', None, 2.0):
        fails(lambda: anonymize(BAD, QI, k=k), 'whole number')
    assert anonymize(BAD, QI, k=np.int64(2)).k >= 2
    fails(lambda: anonymize(BAD, QI, k=7), 'larger than the table (6 rows)')
    fails(lambda: anonymize(BAD, QI, k=2, sensitive='age', l=2), 'both a quasi-identifier and the sensitive')
    fails(lambda: anonymize(BAD, QI, k=2, l=2), 'need a sensitive attribute')
    fails(lambda: anonymize(BAD, QI, k=2, t=0.3), 'need a sensitive attribute')
    e = fails(lambda: anonymize(BAD, QI, k=2, method='datafly'), "unknown method 'datafly'")
    assert all(m in str(e) for m in METHODS)
    e = fails(lambda: anonymize(BAD, QI, k=2, sensitive='dx', l=2, l_kind='shannon'), "unknown l-diversity kind 'shannon'")
    assert all(m in str(e) for m in L_KINDS)
    for ms in (-0.1, 1.5, float('nan')):
        fails(lambda: anonymize(BAD, QI, k=2, max_suppression=ms), 'max_suppression')
    e = fails(lambda: anonymize(BAD, QI, k=2, sensitive='dx', l=3), 'no grouping can reach l = 3')
    assert 'l = 2.00' in str(e) and "'dx'" in str(e)
    # the boundary values are accepted
    check_release(BAD, QI, anonymize(BAD, QI, k=6, max_suppression=1.0), 6, 1.0)
    check_release(BAD, QI, anonymize(BAD, QI, k=1, sensitive='dx', l=2), 1, None)

def test_non_numeric_max_suppression_is_input_error():
    "A share given as text (a CLI or JSON policy) must be refused with InputError, not a TypeError from the comparison."
    fails(lambda: anonymize(BAD, ['age'], k=2, max_suppression='0.1'), 'max_suppression')
    fails(lambda: anonymize(BAD, ['age'], k=2, max_suppression=None), 'max_suppression')

@settings(max_examples=40, **SETTINGS)
@given(tables(max_rows=40), st.integers(-3, 60), st.sampled_from(METHODS + ('fast',)), st.floats(-1, 2, allow_nan=False))
def test_only_lepton_errors(table, k, method, ms):
    "Whatever the parameters, anonymize either releases or raises an InputError — never another exception."
    df, qi = table
    try: res = anonymize(df, qi, k=k, method=method, max_suppression=ms)
    except LeptonError as e: assert isinstance(e, InputError); return
    check_release(df, qi, res, k, ms)
