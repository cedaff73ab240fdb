"""`leptonhub.privacy.dp`: the exact samplers against their distributions (KS and χ² tests, fixed seeds), the analytic Gaussian
against Balle & Wang's reference values, answers on the grid, clamping and sensitivities, the exponential mechanism's
probabilities, the accountant against worked examples, refusal, its JSON state, the hub's `answer`, and bad input."""
from __future__ import annotations
import json, math, random
import numpy as np, pandas as pd
import pytest
from scipy import stats
from leptonhub.core import AccessDenied, InputError
from leptonhub.privacy.dp import (Accountant, BudgetExceeded, Cost, DPResult, _exponential, analytic_sigma, answer, bernoulli_exp,
                                  check_spec, classic_sigma, cost, discrete_gaussian, discrete_gaussian_delta, discrete_laplace,
                                  discrete_sigma, dp_query, gaussian, gaussian_delta, granularity, laplace, zcdp_epsilon)

N = 20_000

@pytest.fixture
def table() -> pd.DataFrame:
    "Ages with a missing value and out-of-range ones, a category, a flag."
    r = np.random.default_rng(0)
    age = r.normal(50, 12, 5000).round()
    age[:3] = [-4, 130, np.nan]
    return pd.DataFrame({'age': age, 'site': r.choice(['a', 'b', 'c'], 5000), 'flag': r.random(5000) < 0.3})

# ---------------------------------------------------------------- exact samplers

def test_bernoulli_exp_frequency():
    r = random.Random(0)
    for g in (0.3, 1.0, 2.7):
        assert abs(np.mean([bernoulli_exp(g, r) for _ in range(N)]) - math.exp(-g)) < 4 * math.sqrt(math.exp(-g) / N)

def test_laplace_noise_has_scale_b():
    b, r = 2.0, random.Random(1)
    x = np.array([laplace(10.0, 1.0, 0.5, rng=r) for _ in range(N)]) - 10.0
    assert abs(np.abs(x).mean() / b - 1) < 0.03                    # mean absolute deviation b
    assert abs(x.var() / (2 * b * b) - 1) < 0.07                   # variance 2b²
    assert stats.kstest(x, stats.laplace(scale=b).cdf).pvalue > 1e-3
    assert stats.kstest(x, stats.laplace(scale=1.1 * b).cdf).pvalue < 1e-3   # the test can tell a 10 % wrong scale

def test_discrete_laplace_pmf():
    b = 1.5
    p = math.exp(-1 / b)
    k = discrete_laplace(b, size=N, rng=2)
    support = np.arange(-6, 7)
    pmf = (1 - p) / (1 + p) * p ** np.abs(support)
    observed = [(k == v).sum() for v in support] + [(np.abs(k) > 6).sum()]
    assert stats.chisquare(observed, [*(pmf * N), N * (1 - pmf.sum())]).pvalue > 1e-3
    assert abs(k.var() / (2 * p / (1 - p) ** 2) - 1) < 0.06

def test_discrete_gaussian_pmf():
    s = 1.5
    k = discrete_gaussian(s, size=N, rng=3)
    ys = np.arange(-40, 41)
    w = np.exp(-ys ** 2 / (2 * s * s)); w /= w.sum()
    support = np.arange(-4, 5)
    pmf = w[support + 40]
    observed = [(k == v).sum() for v in support] + [(np.abs(k) > 4).sum()]
    assert stats.chisquare(observed, [*(pmf * N), N * (1 - pmf.sum())]).pvalue > 1e-3

def test_samplers_default_to_the_secure_generator():
    assert discrete_laplace(1e9) != discrete_laplace(1e9)        # unseeded: fresh OS randomness each time
    assert discrete_laplace(5.0, size=10, rng=4).tolist() == discrete_laplace(5.0, size=10, rng=4).tolist()

# ---------------------------------------------------------------- Gaussian calibration

@pytest.mark.parametrize('eps, delta, ref', [(1, 1e-5, 3.730631634944469), (0.5, 1e-6, 8.057618162678452), (0.1, 1e-5, 30.74956598384496),
                                             (4, 1e-5, 1.0811618535469825), (10, 1e-6, 0.5410868388990683)])
def test_analytic_sigma(eps, delta, ref):
    "Reference σ from Balle & Wang's implementation (agm-example.py, tol 1e-12); δ recomputed with scipy."
    s = analytic_sigma(1.0, eps, delta)
    assert s == pytest.approx(ref, rel=1e-6)
    d = stats.norm.cdf(1 / (2 * s) - eps * s) - math.exp(eps) * stats.norm.cdf(-1 / (2 * s) - eps * s)
    assert d == pytest.approx(delta, rel=1e-9)
    assert gaussian_delta(s * 0.999, 1.0, eps) > delta               # smallest: a hair less noise is not enough
    if eps < 1: assert s < classic_sigma(1.0, eps, delta)
    assert analytic_sigma(3.0, eps, delta) == pytest.approx(3 * s, rel=1e-12)

def test_discrete_gaussian_calibration():
    for D, eps, delta in [(1, 1.0, 1e-5), (1, 0.3, 1e-8), (2, 10.0, 1e-6), (3, 4.0, 1e-5)]:
        s = discrete_sigma(D, eps, delta)
        assert discrete_gaussian_delta(s, D, eps) <= delta
        assert s >= analytic_sigma(D, eps, delta)
    big = 2 ** 30 + 1
    assert discrete_sigma(big, 1.0, 1e-6) == pytest.approx(analytic_sigma(big, 1.0, 1e-6), rel=1e-8)

def test_gaussian_noise_has_sigma():
    r = random.Random(5)
    x = np.array([gaussian(0.0, 2.0, 1.0, 1e-5, rng=r) for _ in range(5000)])
    assert abs(x.std() / analytic_sigma(2.0, 1.0, 1e-5) - 1) < 0.04
    assert stats.kstest(x, stats.norm(scale=analytic_sigma(2.0, 1.0, 1e-5)).cdf).pvalue > 1e-3

# ---------------------------------------------------------------- grid and clamping

def test_answers_lie_on_the_grid(table):
    g = granularity(0.3)
    for v in (math.pi, -1e-7, 12345.678):
        for y in (laplace(v, 0.3, 1.0), gaussian(v, 0.3, 1.0, 1e-6)):
            assert (y / g).is_integer()
    r = dp_query(table, 'sum', 'age', epsilon=1.0, bounds=(-2, 3))
    assert r.granularity == 2.0 ** -28 and (r.value / r.granularity).is_integer()

def test_clamping_and_missing_values():
    df = pd.DataFrame({'x': [-5.0, 0.5, 2.0, 10.0, np.nan]})
    sharp = dict(epsilon=1e9, bounds=(0, 1), rng=0)                  # ε so large that the noise is a few grid steps
    assert dp_query(df, 'sum', 'x', **sharp).value == pytest.approx(2.5, abs=1e-7)
    assert dp_query(df, 'mean', 'x', **sharp).value == pytest.approx(2.5 / 4, abs=1e-7)
    assert dp_query(df, 'mean', 'x', public_n=True, **sharp).value == pytest.approx(2.5 / 4, abs=1e-7)
    assert dp_query(df, 'count', 'x', epsilon=1e9, rng=0).value == 4
    h = dp_query(df, 'histogram', 'x', epsilon=1e9, bounds=(0, 1), bins=[0, 0.25, 1], rng=0).value
    assert h.to_dict() == {'[0, 0.25)': 1, '[0.25, 1]': 3}
    q = pd.DataFrame({'x': [-5.0, 0.2, 0.3, 0.4, 10.0]})                      # clamped to 0, .2, .3, .4, 1
    for seed in range(5):
        assert 0.2 < dp_query(q, 'quantile', 'x', epsilon=1e3, bounds=(0, 1), q=0.5, rng=seed).value <= 0.3   # 2 values below
        assert 0.4 < dp_query(q, 'quantile', 'x', epsilon=1e3, bounds=(0, 1), q=0.9, rng=seed).value <= 1.0   # 4 values below

def test_noise_scale_follows_the_bounds(table):
    n = table.age.notna().sum()
    assert dp_query(table, 'count', epsilon=0.5).scale == 2.0
    assert dp_query(table, 'sum', 'age', epsilon=0.5, bounds=(-2, 3)).scale == pytest.approx(6.0, rel=1e-8)          # max |bound| / ε
    assert dp_query(table, 'sum', 'age', epsilon=0.5, bounds=(0, 120)).scale == pytest.approx(240, rel=1e-8)
    assert dp_query(table, 'mean', 'age', epsilon=0.5, bounds=(0, 120), public_n=True).scale == pytest.approx(240 / n, rel=1e-8)   # (u - l) / (n ε)
    assert dp_query(table, 'mean', 'age', epsilon=0.5, bounds=(0, 120)).scale == pytest.approx(60 / 0.25, rel=1e-8)   # centred sum, ε/2
    assert dp_query(table, 'count', epsilon=1.0, delta=1e-5, mechanism='gaussian').scale == discrete_sigma(1, 1.0, 1e-5)

def test_public_n_mean_error_matches_theory(table):
    x = table.age.dropna().clip(0, 120)
    b = 120 / (len(x) * 1.0)
    r = random.Random(6)
    err = [abs(dp_query(table, 'mean', 'age', epsilon=1.0, bounds=(0, 120), public_n=True, rng=r).value - x.mean()) for _ in range(4000)]
    assert abs(np.median(err) / (b * math.log(2)) - 1) < 0.08
    assert stats.kstest(np.array(err), stats.expon(scale=b).cdf).pvalue > 1e-3      # |Laplace(b)| is exponential(b)

def test_histogram_and_quantile_accuracy(table):
    h = dp_query(table, 'histogram', 'site', epsilon=1.0, bins=['a', 'b', 'c', 'z'], rng=7).value
    true = table.site.value_counts().reindex(['a', 'b', 'c', 'z'], fill_value=0)
    assert (abs(h - true.to_numpy()) < 15).all() and list(h.index) == ['a', 'b', 'c', 'z']
    flags = dp_query(table, 'histogram', 'flag', epsilon=1.0, bins=[True, False], rng=7).value
    assert abs(flags[True] - table.flag.sum()) < 15
    med = [dp_query(table, 'quantile', 'age', epsilon=1.0, bounds=(0, 120), q=0.5, rng=i).value for i in range(20)]
    assert abs(np.median(med) - table.age.median()) <= 1 and all(v in np.round(np.linspace(0, 120, 1001), 9) for v in np.round(med, 9))

def test_exponential_mechanism_probabilities():
    d, eps = np.array([0, 1, 2, 3, 1]), 1.0
    r = random.Random(8)
    j = np.array([_exponential(d, eps, r) for _ in range(N)])
    p = np.exp(-eps * d / 2); p /= p.sum()
    assert stats.chisquare(np.bincount(j, minlength=len(d)), p * N).pvalue > 1e-3

# ---------------------------------------------------------------- cost and accountant

def test_costs():
    assert cost('count', 0.5) == Cost(0.5, 0.0, 0.125)
    assert cost('mean', 0.5) == Cost(0.5, 0.0, 0.0625)                 # two Laplace releases at ε/2
    assert cost('quantile', 2.0).rho == 0.5                            # exponential mechanism: ε²/8
    s = analytic_sigma(1, 0.5, 1e-6)
    assert cost('sum', 0.5, 1e-6, 'gaussian').rho == pytest.approx(1 / (2 * s * s), rel=1e-12)
    assert cost('mean', 0.5, 1e-6, 'gaussian').rho == pytest.approx(1 / analytic_sigma(1, 0.25, 5e-7) ** 2, rel=1e-12)

def test_basic_composition():
    acc = Accountant(2.0, composition='basic')
    for _ in range(3): acc.charge(cost('mean', 0.5))
    assert acc.spent.epsilon == 1.5 and acc.remaining.epsilon == 0.5 and acc.remaining.rho is None
    acc = Accountant(0.3, composition='basic')
    acc.charge(cost('count', 0.1)); acc.charge(cost('count', 0.2))        # 0.1 + 0.2 > 0.3 in floats: still within the budget
    acc = Accountant(1.0, composition='basic')
    for _ in range(10): acc.charge(cost('count', 0.1))
    assert acc.would_exceed(cost('count', 1e-6))

def test_zcdp_composition():
    eps, delta, k = 0.2, 1e-7, 25
    rho1 = 1 / (2 * analytic_sigma(1, eps, delta) ** 2)
    acc = Accountant(2.0, 1e-5)
    for _ in range(k): acc.charge(cost('sum', eps, delta, 'gaussian'))
    assert acc.spent.rho == pytest.approx(k * rho1, rel=1e-12)
    assert acc.spent.epsilon == pytest.approx(k * rho1 + 2 * math.sqrt(k * rho1 * math.log(1e5)), rel=1e-12)
    assert acc.spent.epsilon == pytest.approx(zcdp_epsilon(k * rho1, 1e-5)) and acc.bound == 'zcdp' and acc.spent.delta == 1e-5
    assert acc.spent.epsilon < k * eps / 3                             # far below basic composition's 5
    L = math.log(1e5)
    assert acc.remaining.rho == pytest.approx((math.sqrt(L + 2) - math.sqrt(L)) ** 2 - k * rho1, rel=1e-12)
    few = Accountant(2.0, 1e-5)
    few.charge(cost('count', 0.5)); few.charge(cost('count', 0.5))
    assert few.bound == 'basic' and few.spent.epsilon == 1.0           # for two pure-ε queries basic is tighter

def test_refusal_when_exhausted():
    acc = Accountant(1.0, 1e-6, consumer='clinic-b', dataset='heart')
    acc.charge(cost('count', 0.7), 'count of rows')
    with pytest.raises(BudgetExceeded, match=r'would cost ε = 0\.5 .* only ε = 0\.3.* is left') as e:
        acc.charge(cost('count', 0.5), 'count of rows')
    assert isinstance(e.value, AccessDenied) and e.value.remaining.epsilon == pytest.approx(0.3) and e.value.cost.epsilon == 0.5
    assert "of 'clinic-b' on 'heart'" in str(e.value)
    assert len(acc.charges) == 1 and acc.spent.epsilon == 0.7          # nothing recorded
    acc.charge(cost('count', 0.3))                                     # exactly what is left
    with pytest.raises(BudgetExceeded): acc.charge(cost('count', 1e-9))
    no_delta = Accountant(5.0)
    with pytest.raises(BudgetExceeded, match='δ'): no_delta.charge(cost('count', 0.1, 1e-9, 'gaussian'))

def test_accountant_json_round_trip():
    acc = Accountant(3.0, 1e-6, consumer='c', dataset='d')
    acc.charge(cost('count', 0.3), 'count of rows'); acc.charge(cost('sum', 0.2, 1e-8, 'gaussian'), "sum of 'age'")
    state = json.loads(json.dumps(acc.to_dict()))
    back = Accountant.from_dict(state)
    assert back.to_dict() == acc.to_dict() and back.spent == acc.spent and back.remaining == acc.remaining
    assert back.history().label.tolist() == ['count of rows', "sum of 'age'"]
    with pytest.raises(InputError, match="unknown key 'x'"): Accountant.from_dict({**state, 'x': 1})

# ---------------------------------------------------------------- the hub's entry point

def test_answer_checks_then_charges_then_runs(table):
    acc = Accountant(1.0)
    r = answer(table, {'kind': 'mean', 'column': 'age', 'epsilon': 0.25, 'bounds': [0, 120]}, acc)
    assert isinstance(r, DPResult) and acc.spent.epsilon == 0.25 and acc.charges[0]['label'] == "mean of 'age'"
    assert json.loads(json.dumps(r.to_dict()))['kind'] == 'mean'
    for bad in ({'kind': 'mean', 'column': 'age', 'epsilon': 0.25, 'bounds': [0, 120], 'seed': 1},
                {'kind': 'mean', 'column': 'nope', 'epsilon': 0.25, 'bounds': [0, 120]},
                {'kind': 'mean', 'column': 'site', 'epsilon': 0.25, 'bounds': [0, 120]},
                {'kind': 'mean', 'column': 'age', 'epsilon': 0.25},
                {'column': 'age', 'epsilon': 0.25}, {'kind': 3, 'epsilon': 0.25}):
        with pytest.raises(InputError): answer(table, bad, acc)
    with pytest.raises(BudgetExceeded): answer(table, {'kind': 'count', 'epsilon': 0.8}, acc)
    assert acc.spent.epsilon == 0.25 and len(acc.charges) == 1         # refused queries cost nothing
    h = answer(table, {'kind': 'histogram', 'column': 'site', 'epsilon': 0.5, 'bins': ['a', 'b']}, acc).to_dict()
    assert set(h['value']) == {'a', 'b'}
    assert answer(table, {'kind': 'mean', 'column': 'age', 'epsilon': 0.25, 'bounds': [0, 120]}, acc, public_n=True).rho == 0.25 ** 2 / 2
    assert acc.remaining.epsilon == 0

# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('kw, msg', [
    (dict(kind='mean', column='age', epsilon=-1, bounds=(0, 1)), 'epsilon must be a positive number'),
    (dict(kind='mean', column='age', epsilon=0, bounds=(0, 1)), 'epsilon must be a positive number'),
    (dict(kind='mean', column='age', epsilon=float('inf'), bounds=(0, 1)), 'epsilon must be a positive number'),
    (dict(kind='mean', column='age', epsilon=True, bounds=(0, 1)), 'epsilon must be a positive number'),
    (dict(kind='mean', column='age', epsilon=1, delta=-0.1, mechanism='gaussian', bounds=(0, 1)), 'delta must be a number in [0, 1)'),
    (dict(kind='mean', column='age', epsilon=1, delta=1, mechanism='gaussian', bounds=(0, 1)), 'delta must be a number in [0, 1)'),
    (dict(kind='mean', column='age', epsilon=1, mechanism='gaussian', bounds=(0, 1)), 'needs delta > 0'),
    (dict(kind='mean', column='age', epsilon=1, delta=1e-6, bounds=(0, 1)), 'delta is only for the Gaussian'),
    (dict(kind='mean', column='age', epsilon=1), 'needs bounds=(lower, upper)'),
    (dict(kind='sum', column='age', epsilon=1, bounds=(3, 1)), 'must be below the upper bound'),
    (dict(kind='sum', column='age', epsilon=1, bounds=(0, float('nan'))), 'bounds must be two finite numbers'),
    (dict(kind='sum', column='age', epsilon=1, bounds=(0, 1, 2)), 'bounds must be two finite numbers'),
    (dict(kind='sum', column='site', epsilon=1, bounds=(0, 1)), "column 'site' is not numeric"),
    (dict(kind='quantile', column='flag', epsilon=1, bounds=(0, 1), q=0.5), "column 'flag' is not numeric"),
    (dict(kind='stdev', column='age', epsilon=1), "unknown query kind 'stdev'"),
    (dict(kind='mean', column='weight', epsilon=1, bounds=(0, 1)), "no column 'weight'"),
    (dict(kind='mean', epsilon=1, bounds=(0, 1)), 'a mean needs a column'),
    (dict(kind='count', epsilon=1, q=0.5), 'a count takes no q'),
    (dict(kind='quantile', column='age', epsilon=1, bounds=(0, 1)), 'needs q='),
    (dict(kind='quantile', column='age', epsilon=1, bounds=(0, 1), q=2), 'q must be a number in [0, 1]'),
    (dict(kind='quantile', column='age', epsilon=1, bounds=(0, 1), q=0.5, mechanism='gaussian'), 'uses the exponential mechanism'),
    (dict(kind='histogram', column='age', epsilon=1), 'needs bins='),
    (dict(kind='histogram', column='age', epsilon=1, bins=5), 'needs bounds=(lower, upper) to place them'),
    (dict(kind='histogram', column='age', epsilon=1, bins=[0, 10, 5], bounds=(0, 5)), 'increasing edges'),
    (dict(kind='histogram', column='site', epsilon=1, bins='abc'), 'bins of a histogram must be'),
    (dict(kind='count', epsilon=1, mechanism='snapping'), "not 'snapping'"),
])
def test_bad_input(table, kw, msg):
    with pytest.raises(InputError) as e: dp_query(table, **kw)
    assert msg in str(e.value)

def test_bad_specs_and_budgets():
    with pytest.raises(InputError, match='a query is a JSON object'): check_spec('mean')
    with pytest.raises(InputError, match="unknown key 'columns'"): check_spec({'kind': 'mean', 'columns': 'age', 'epsilon': 1})
    with pytest.raises(InputError, match='epsilon must be a positive number'): Accountant(0)
    with pytest.raises(InputError, match='budget delta'): Accountant(1, 1.0)
    with pytest.raises(InputError, match='composition must be one of'): Accountant(1, composition='rdp')
    with pytest.raises(InputError, match='charge a Cost'): Accountant(1).charge(0.5)
    with pytest.raises(InputError, match='rng must be None'): dp_query(pd.DataFrame({'x': [1]}), 'count', epsilon=1, rng='seed')
    with pytest.raises(InputError, match='must be a pandas DataFrame'): dp_query([1, 2], 'count', epsilon=1)
