"""`leptonhub.metrics.score`: the three numbers of a share and the policy search, checked on values.

E = N / C with N = ingested − duplicates − invalid − suppressed and C = ingested + retries, exactly, from the ledger;
Q = (1/N) Σ qᵢ (1 − NCPᵢ) over the delivered records (so Q = mean q with nothing generalised and Q ≤ mean q always);
P = 1 − S/T with S the linkage attack's expected re-identifications plus records served without a grant
(so P = 0 for the raw release of a table of unique rows and P ≥ 1 − 1/k for a k-anonymous one);
`search` returns the best E·Q meeting the floor, the exact non-dominated set of what it tried, and prunes larger k.

Hypothesis runs derandomized, so every run checks the same examples."""
from __future__ import annotations
import itertools, warnings
import numpy as np, pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from leptonhub.core import InputError
from leptonhub.metrics.ledger import Ledger
from leptonhub.metrics.score import ShareScore, efficiency, pareto, plot_frontier, privacy, score_policy, search, view_quality
from leptonhub.privacy.anonymize import anonymize

def fast(n:int) -> settings:
    "Hypothesis settings: `n` examples, no deadline, the same examples every run."
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])

METHODS = ('mondrian', 'mondrian-strict', 'greedy')
CATS = ['a', 'b', 'c', 'd', 'e']
TOL = 1e-12

# ---------------------------------------------------------------- strategies

@st.composite
def tables(draw, min_rows:int=20, max_rows:int=200):
    """(table, qi, q): 2–3 quasi-identifiers (ints, negative too, or categories as text or `Categorical`), a payload column, and qᵢ in [0, 1].
    Values come from a drawn seed; a drawn share of rows piles on each QI's largest value, which leaves small outlying tails below it
    (what makes strict Mondrian suppress)."""
    n = draw(st.integers(min_rows, max_rows))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cols = {}
    for j in range(draw(st.integers(2, 3))):
        top = rng.random(n) < draw(st.sampled_from([0.0, 0.5, 0.9]))
        if draw(st.booleans()):
            lo, span = draw(st.integers(-50, 50)), draw(st.integers(0, 200))
            cols[f'q{j}'] = np.where(top, lo + span, rng.integers(lo, lo + span + 1, n))
        else:
            cats = CATS[:draw(st.integers(1, len(CATS)))]
            vals = np.where(top, cats[-1], rng.choice(cats, n)).tolist()
            cols[f'q{j}'] = pd.Categorical(vals) if draw(st.booleans()) else vals
    df = pd.DataFrame(cols)
    qi = list(df.columns)
    df['payload'] = np.arange(n)
    kind = draw(st.sampled_from(['uniform', 'uniform', 'ones', 'zero-one']))
    q = {'uniform': rng.random(n), 'ones': np.ones(n), 'zero-one': rng.integers(0, 2, n).astype(float)}[kind]
    return df, qi, q

@st.composite
def ledgers(draw, n:int):
    "(entries, expected): two collect sources ingesting n + duplicates + invalid rows, a clean step dropping them, retries anywhere."
    dup, inv = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    r = [draw(st.integers(0, 20)) for _ in range(3)]
    ingested = n + dup + inv
    north = draw(st.integers(0, ingested))
    led = Ledger()
    led.record('collect', 'north', rows_in=north, rows_out=north, retries=r[0])
    led.record('collect', 'south', rows_in=ingested - north, rows_out=ingested - north, retries=r[1])
    led.record('clean', rows_in=ingested, rows_out=n, duplicates=dup, invalid=inv, retries=r[2])
    led.record('anonymize', rows_in=n, rows_out=n)                      # rows_in of a later step is not ingestion
    return led.entries, {'ingested': ingested, 'duplicates': dup, 'invalid': inv, 'retries': sum(r)}

@st.composite
def policies(draw, qi:list[str]):
    "k 1–10, a method, a suppression limit of 0 or 0.1, and nothing or one QI dropped."
    drop = draw(st.one_of(st.just([]), st.sampled_from(qi).map(lambda a: [a])))
    return {'k': draw(st.integers(1, 10)), 'method': draw(st.sampled_from(METHODS)),
            'max_suppression': draw(st.sampled_from([0.0, 0.1])), 'drop_qi': drop}

@st.composite
def cases(draw, **kw):
    df, qi, q = draw(tables(**kw))
    entries, expected = draw(ledgers(len(df)))
    return df, qi, q, entries, expected, draw(policies(qi))

def clean_ledger(n:int) -> list[dict]:
    "A ledger that ingested exactly the n rows of the table: N = n − suppressed, C = n."
    led = Ledger(); led.record('collect', rows_in=n, rows_out=n)
    return led.entries

def released(df, qi, policy):
    "The `anonymize` run that `score_policy` does for `policy`, done independently: (result, kept QIs)."
    kept = [a for a in qi if a not in policy.get('drop_qi', [])]
    args = {k: v for k, v in policy.items() if k != 'drop_qi'}
    return anonymize(df, kept, **args), kept

# ---------------------------------------------------------------- E

def test_efficiency_counts_from_the_ledger():
    led = Ledger()
    led.record('collect', 'north', rows_in=600, rows_out=600); led.record('collect', 'south', rows_in=400, rows_out=400, retries=20)
    led.record('clean', rows_in=1000, rows_out=930, duplicates=50, invalid=20, retries=5)
    led.record('anonymize', rows_in=930, rows_out=930)
    e = efficiency(led.entries, suppressed=30)
    assert (e['N'], e['C'], e['ingested'], e['retries']) == (900, 1025, 1000, 25)
    assert (e['duplicates'], e['invalid'], e['suppressed']) == (50, 20, 30)
    assert e['E'] == 900 / 1025
    assert efficiency([])['E'] == 0.0 and efficiency([])['N'] == 0             # nothing processed: E = 0, not a division by zero
    with pytest.raises(InputError, match='drops more rows'): efficiency(led.entries, suppressed=931)

@fast(60)
@given(cases())
def test_scores_in_range_and_counts_exact(case):
    "E ≤ 1, Q and P in [0, 1]; N and C exactly as the ledger and the suppression say; T is the view's rows; P ≥ 1 − 1/k."
    df, qi, q, entries, ex, policy = case
    s = score_policy(df, q, entries, qi, policy)
    res, _ = released(df, qi, policy)
    assert 0 <= s.E <= 1 and 0 <= s.Q <= 1 and 0 <= s.P <= 1
    assert s.N == ex['ingested'] - ex['duplicates'] - ex['invalid'] - res.suppressed
    assert s.C == ex['ingested'] + ex['retries']
    assert s.E == s.N / s.C and s.EQ == s.E * s.Q
    assert s.detail['E']['suppressed'] == res.suppressed and s.detail['E']['retries'] == ex['retries']
    assert s.T == len(df) and s.S >= 0 and s.P == max(0.0, 1 - s.S / s.T)
    assert s.S <= s.T / policy['k'] + 1e-9                                      # every released row hides in ≥ k candidates

@st.composite
def outlier_tables(draw):
    """(table, qi, q, k): 2–3 groups on `x`, each piled on y = 100 with a tail of ⌈k/2⌉..k−1 low outliers, at most 200 rows —
    the shape on which strict Mondrian suppresses (each tail is too small to cut off and together they reach k)."""
    k = draw(st.integers(2, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    xs, ys = [], []
    for g in range(draw(st.integers(2, 3))):
        tail = draw(st.integers((k + 1) // 2, k - 1)) if k > 2 else 1
        size = draw(st.integers(max(2 * k + 2, 10 * tail + 1), 10 * tail + 25))
        xs += [g] * size; ys += list(rng.integers(0, 50, tail)) + [100] * (size - tail)
    assume(len(xs) <= 200)
    perm = rng.permutation(len(xs))
    df = pd.DataFrame({'x': np.array(xs)[perm], 'y': np.array(ys)[perm]})
    return df, ['x', 'y'], rng.random(len(df)), k

def check_suppression_monotone(df, qi, q, k, drop):
    "Policies differing only in max_suppression, for every method: N(0.1) ≤ N(0) = n, C unchanged, and never past the limit."
    entries = clean_ledger(len(df))
    for method in METHODS:
        base = {'k': k, 'method': method, 'drop_qi': [qi[-1]] if drop and len(qi) > 2 else []}
        s0, s1 = (score_policy(df, q, entries, qi, base | {'max_suppression': ms}) for ms in (0.0, 0.1))
        assert s0.N == len(df)                                                  # no suppression allowed: every row delivered
        assert s1.N <= s0.N and s1.C == s0.C == len(df)
        assert s1.N == len(df) - s1.detail['E']['suppressed'] >= len(df) - int(0.1 * len(df))

@fast(25)
@given(outlier_tables())
def test_more_suppression_never_raises_N_with_outliers(case):
    df, qi, q, k = case
    check_suppression_monotone(df, qi, q, k, False)

@fast(15)
@given(tables(max_rows=120), st.integers(1, 10), st.booleans())
def test_more_suppression_never_raises_N(table, k, drop):
    df, qi, q = table
    check_suppression_monotone(df, qi, q, k, drop)

def test_suppressing_outliers_lowers_N_exactly():
    "Two low outliers in each half of the table: strict Mondrian at k = 3 suppresses the four of them when allowed."
    df = pd.DataFrame({'x': [0] * 22 + [1] * 22, 'y': [0, 0] + [10] * 20 + [5, 5] + [10] * 20})
    q = np.linspace(0, 1, len(df))
    entries = clean_ledger(len(df))
    pol = {'k': 3, 'method': 'mondrian-strict'}
    s0 = score_policy(df, q, entries, ['x', 'y'], pol | {'max_suppression': 0.0})
    s1 = score_policy(df, q, entries, ['x', 'y'], pol | {'max_suppression': 0.1})
    assert (s0.N, s1.N) == (44, 40) and s0.C == s1.C == 44
    assert s1.E == 40 / 44 < s0.E == 1.0
    assert s1.detail['E']['suppressed'] == 4

# ---------------------------------------------------------------- Q

def test_view_quality_is_the_discounted_mean():
    assert view_quality([0.5, 1.0]) == 0.75
    assert view_quality([0.5, 1.0], [0.0, 0.5]) == 0.5
    assert view_quality([]) == 0.0

@fast(30)
@given(tables(), st.sampled_from(METHODS), st.sampled_from([0.0, 0.1]), st.data())
def test_quality_without_generalisation_and_after_dropping(table, method, ms, data):
    "k = 1, nothing dropped: Q = mean q exactly; dropping a QI that varies costs it 1/|qi| of every record's quality."
    df, qi, q = table
    entries = clean_ledger(len(df))
    s = score_policy(df, q, entries, qi, {'k': 1, 'method': method, 'max_suppression': ms})
    assert s.Q == pytest.approx(q.mean(), abs=TOL) and s.N == len(df)
    a = data.draw(st.sampled_from(qi))
    d = score_policy(df, q, entries, qi, {'k': 1, 'method': method, 'max_suppression': ms, 'drop_qi': [a]})
    assert d.Q == pytest.approx(q.mean() * (1 - 1 / len(qi)), abs=TOL)
    if df[a].nunique() > 1 and q.mean() > 0: assert d.Q < s.Q

@fast(60)
@given(cases())
def test_quality_never_above_mean_q(case):
    "The NCP discount only lowers: Q ≤ mean q over the delivered (unsuppressed) rows, which is all rows without suppression."
    df, qi, q, _, _, policy = case
    s = score_policy(df, q, clean_ledger(len(df)), qi, policy)
    res, _ = released(df, qi, policy)
    kept = res.classes >= 0
    assert s.Q <= q[kept].mean() + TOL
    if policy['max_suppression'] == 0: assert s.Q <= q.mean() + TOL

# A minimal case: with k = 3, Mondrian cuts A = aaaaaabb at position 4, so rows 4–7 form one class holding both values of A and
# of B: released as (*, *), record NCP 1. They are delivered (N = 8) and worth q·(1 − 1) = 0 each, so Q = (4·1 + 4·0)/8 = 0.5.
FULL = pd.DataFrame({'A': list('aaaaaabb'), 'B': list('pppppqqp')})
FULL_Q = np.array([1, 1, 1, 1, 0, 0, 0, 0], float)

def test_fully_generalised_records_count_in_Q():
    "BUG: score_policy leaves records whose every QI is generalised to `*` out of Q's mean, so Q = 1.0 > mean q = 0.5."
    res = anonymize(FULL, ['A', 'B'], k=3)
    assert res.suppressed == 0 and res.record_ncp.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]    # the premise
    s = score_policy(FULL, FULL_Q, clean_ledger(8), ['A', 'B'], {'k': 3})
    assert s.N == 8
    assert s.Q == pytest.approx(0.5)                          # (1/N) Σ qᵢ (1 − NCPᵢ) over the 8 delivered records
    assert s.Q <= FULL_Q.mean() + TOL

def test_fully_generalised_records_count_in_Q_uniform_q():
    "BUG, same cause: with every qᵢ = 1, half the records lose all QI precision, yet Q = 1.0 instead of 0.5."
    s = score_policy(FULL, np.ones(8), clean_ledger(8), ['A', 'B'], {'k': 3})
    assert s.Q == pytest.approx(0.5)

@fast(50)
@given(cases(max_rows=100))
def test_quality_is_its_documented_formula(case):
    "Q = (1/N) Σ over the N delivered (unsuppressed) records of qᵢ (1 − NCPᵢ), NCPᵢ averaged over all QIs, a dropped one costing 1."
    df, qi, q, _, _, policy = case
    s = score_policy(df, q, clean_ledger(len(df)), qi, policy)
    res, kept = released(df, qi, policy)
    ncp = (res.record_ncp * len(kept) + (len(qi) - len(kept))) / len(qi)
    on = res.classes >= 0
    assert s.N == on.sum()
    assert s.Q == pytest.approx((q[on] * (1 - ncp[on])).sum() / s.N if s.N else 0.0, abs=1e-9)

# ---------------------------------------------------------------- P

@st.composite
def unique_tables(draw):
    "(table, qi): 20–200 rows, every row unique on its QIs (distinct ints, negative too, in the first), 2–3 QIs."
    n = draw(st.integers(20, 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, span = draw(st.integers(-500, 0)), draw(st.integers(n, 3 * n))
    cols = {'a': lo + rng.permutation(span)[:n], 'b': rng.choice(CATS[:3], n)}
    if draw(st.booleans()): cols['c'] = rng.integers(0, 5, n)
    df = pd.DataFrame(cols)
    return df, list(df.columns)

@fast(30)
@given(unique_tables(), st.sampled_from(METHODS), st.sampled_from([0.0, 0.1]), st.integers(1, 30))
def test_attack_succeeds_on_raw_and_fails_on_k_anonymous(table, method, ms, m):
    "Unique rows: k = 1 exposes everyone (S = T, P = 0); k = 5 at most one in five (S ≤ T/5, P ≥ 0.8); a grantless serve adds 1 to S."
    df, qi = table
    n, q, entries = len(df), np.ones(len(df)), clean_ledger(len(df))
    with warnings.catch_warnings():
        warnings.simplefilter('error')                                            # every target is covered by its own row
        raw = privacy(df, df, qi)
        s1 = score_policy(df, q, entries, qi, {'k': 1, 'method': method, 'max_suppression': ms})
        s5 = score_policy(df, q, entries, qi, {'k': 5, 'method': method, 'max_suppression': ms})
        s5m = score_policy(df, q, entries, qi, {'k': 5, 'method': method, 'max_suppression': ms}, served_without_grant=m)
    assert raw['S'] == n and raw['P'] == 0.0 and raw['unique_matches'] == n
    assert s1.S == s1.T == n and s1.P == 0.0
    assert s5.T == n and s5.S <= n / 5 + 1e-9 and s5.P >= 0.8 - TOL
    assert s5m.S == pytest.approx(s5.S + m, abs=1e-9) and s5m.detail['P']['S_access'] == m
    assert s5m.detail['P']['S_linkage'] == pytest.approx(s5.S, abs=1e-9)
    assert s5m.P == pytest.approx(max(0.0, 1 - (s5.S + m) / n), abs=TOL)

def test_privacy_served_without_grant_one_for_one_and_clamped():
    df = pd.DataFrame({'a': range(10), 'b': ['x'] * 10})
    base = privacy(df, df, ['a', 'b'])
    assert (base['S'], base['T'], base['P']) == (10, 10, 0.0)
    view = anonymize(df, ['a', 'b'], k=5).data
    p = [privacy(df, view, ['a', 'b'], served_without_grant=m) for m in range(4)]
    assert [x['S'] for x in p] == pytest.approx([2 + m for m in range(4)])     # two classes of 5: 10 × 1/5 = 2
    assert [x['P'] for x in p] == pytest.approx([0.8, 0.7, 0.6, 0.5])
    assert privacy(df, view, ['a', 'b'], served_without_grant=50)['P'] == 0.0  # more exposed than released: P stops at 0

def test_all_qis_dropped_serves_are_counted_and_P_stays_in_range():
    "BUG: with every QI dropped, score_policy's P is 1 − S/T unclamped: 8 rows, 20 grantless serves give P = −1.5, not 0."
    entries = clean_ledger(8)
    few = score_policy(FULL, FULL_Q, entries, ['A', 'B'], {'k': 1, 'drop_qi': ['A', 'B']}, served_without_grant=2)
    assert (few.S, few.T, few.P) == (2, 8, 0.75) and few.Q == 0.0              # nothing identifying released: only the serves expose
    many = score_policy(FULL, FULL_Q, entries, ['A', 'B'], {'k': 1, 'drop_qi': ['A', 'B']}, served_without_grant=20)
    assert many.S == 20 and 0.0 <= many.P <= 1.0

def test_share_score_to_dict():
    s = score_policy(FULL, FULL_Q, clean_ledger(8), ['A', 'B'], {'k': 2, 'method': 'mondrian'})
    d = s.to_dict()
    assert d['EQ'] == s.E * s.Q and d['N'] == s.N and d['policy'] == {'k': 2, 'method': 'mondrian'}
    assert set(d['measured']) == {'E', 'Q', 'P'} and isinstance(s, ShareScore)

# ---------------------------------------------------------------- search

def family(row) -> tuple: return (row['method'], row['max_suppression'], row['drop_qi'])

@fast(25)
@given(tables(max_rows=80), st.sampled_from([0.3, 0.5, 0.7, 0.8, 0.9]), st.lists(st.sampled_from([1, 2, 3, 5, 7]), min_size=2, max_size=4, unique=True),
       st.lists(st.sampled_from(METHODS), min_size=1, max_size=2, unique=True), st.sampled_from([(0.0,), (0.0, 0.1)]), st.booleans())
def test_search_best_frontier_and_pruning(table, target, extra_ks, methods, suppression, drop):
    df, qi, q = table
    ks = tuple(extra_ks) + (10,)                                                # unsorted on purpose; k = 10 ≤ n reaches P ≥ 0.9
    drops = [qi[0]] if drop else []
    res = search(df, q, clean_ledger(len(df)), qi, p_target=target, ks=ks, methods=methods, suppression=suppression, drop=drops, progress=False)
    tried = res.tried
    # the answer meets the floor and beats every tried policy that does
    assert res.best.P >= target
    meets = tried[tried.P >= target]
    assert len(meets) and res.best.EQ == meets.EQ.max()
    assert (meets.EQ <= res.best.EQ).all()
    again = score_policy(df, q, clean_ledger(len(df)), qi, res.best.policy)
    assert (again.EQ, again.P) == (res.best.EQ, res.best.P)
    # the frontier is exactly the non-dominated set of `tried`
    pts = list(zip(tried.EQ, tried.P))
    free = {i for i, (e, p) in enumerate(pts) if not any(e2 >= e and p2 >= p and (e2 > e or p2 > p) for e2, p2 in pts)}
    assert set(res.frontier.index) == free
    assert res.frontier.P.is_monotonic_increasing
    # within a family, k grows until the first that meets the floor, and no further
    fams = {(m, str(s), str(d)) for m, s, d in itertools.product(methods, suppression, [[]] + [[a] for a in drops])}
    assert {family(r) for _, r in tried.iterrows()} == fams
    for f, rows in tried.groupby(['method', 'max_suppression', 'drop_qi'], sort=False):
        got, ok = rows.k.tolist(), (rows.P >= target).tolist()
        want = [k for k in sorted(ks) if k <= len(df)]
        first = ok.index(True) if True in ok else len(got) - 1
        assert got == want[:first + 1], f                                       # nothing skipped below, nothing tried above
        assert not any(ok[:first])

def test_search_time_budget_zero_raises():
    "time_budget = 0: the clock has moved before the first policy, so nothing is tried and the search says the budget ran out."
    df = pd.DataFrame({'a': range(30), 'b': ['x', 'y', 'z'] * 10})
    with pytest.raises(InputError, match='time budget of 0 s ran out before any policy') as e:
        search(df, np.ones(30), clean_ledger(30), ['a', 'b'], p_target=0.5, time_budget=0, progress=False)
    assert 'best reachable' not in str(e.value)                                 # nothing was measured, so nothing to name

def test_search_unreachable_target_names_best_reachable():
    "P = 1 is out of reach (every target's own row covers it); the error names the largest P measured and its E·Q."
    df = pd.DataFrame({'a': [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4], 'b': list('xyzxyzxyzxyzxyzxyzxy')})
    q = np.linspace(0.2, 1, 20)
    ks, methods = (1, 2, 5), ('mondrian', 'greedy')
    with pytest.raises(InputError) as e:
        search(df, q, clean_ledger(20), ['a', 'b'], p_target=1.0, ks=ks, methods=methods, drop=['b'], progress=False)
    scores = [score_policy(df, q, clean_ledger(20), ['a', 'b'], {'method': m, 'max_suppression': 0.0, 'drop_qi': d, 'k': k})
              for m in methods for d in ([], ['b']) for k in ks]
    top = max(scores, key=lambda s: (s.P, s.EQ))
    msg = str(e.value)
    assert f'the best reachable is P = {top.P:.3f} at E·Q = {top.EQ:.3f}' in msg
    assert top.P < 1 and 'P ≥ 1.0' in msg

def test_search_refuses_empty_data_and_no_qi():
    df = pd.DataFrame({'a': range(10), 'b': ['x'] * 10})
    with pytest.raises(InputError, match='empty'): search(df.iloc[:0], np.ones(0), clean_ledger(0), ['a', 'b'], progress=False)
    with pytest.raises(InputError, match='quasi-identifiers'): search(df, np.ones(10), clean_ledger(10), [], progress=False)
    for t in (0, -0.1, 1.5):
        with pytest.raises(InputError, match='p_target'): search(df, np.ones(10), clean_ledger(10), ['a'], p_target=t, progress=False)

def test_pareto_by_hand():
    tried = pd.DataFrame({'EQ': [0.9, 0.8, 0.8, 0.5, 0.9, 0.4], 'P': [0.1, 0.5, 0.4, 0.9, 0.1, 0.9]})
    front = pareto(tried)
    assert sorted(front.index) == [0, 1, 3, 4]                                  # ties are kept; 2 (by 1) and 5 (by 3) are beaten
    assert front.P.tolist() == sorted(front.P.tolist())
    assert len(pareto(tried.iloc[:0])) == 0

def test_plot_frontier_draws_what_was_tried():
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    df = pd.DataFrame({'a': list(range(20)) * 2, 'b': ['x', 'y'] * 20})
    res = search(df, np.linspace(0, 1, 40), clean_ledger(40), ['a', 'b'], p_target=0.7, ks=(1, 2, 5), progress=False)
    ax = plot_frontier(res)
    pts = ax.collections[0].get_offsets()
    assert np.allclose(pts, np.column_stack([res.tried.P, res.tried.EQ]))
    assert np.allclose(ax.lines[0].get_xydata(), np.column_stack([res.frontier.P, res.frontier.EQ]))
    assert np.allclose(ax.collections[-1].get_offsets(), [[res.best.P, res.best.EQ]])
    plt.close(ax.figure)
