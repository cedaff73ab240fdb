"""`leptonhub.metrics.fairness`: per-group rates and gaps against a plain reference, rates in [0, 1], the ratio ≤ 1,
perfect predictions, groups from several columns, row order and index labels, the JSON summary, the plot, and bad input."""
from __future__ import annotations
import json, math
import numpy as np, pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from leptonhub.core import InputError
from leptonhub.metrics.fairness import GAPS, RATES, FairnessReport, fairness

def fast(n:int) -> settings:
    "Hypothesis settings: `n` examples, no per-example deadline."
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])

@st.composite
def cases(draw, classes:int=2, max_rows:int=50):
    "(y_true, y_pred, groups, positive): labels 0 … classes-1, groups from a small alphabet (None included), a positive that occurs."
    n = draw(st.integers(1, max_rows))
    label = st.integers(0, classes - 1)
    yt = draw(st.lists(label, min_size=n, max_size=n))
    yp = draw(st.lists(label, min_size=n, max_size=n))
    g = draw(st.lists(st.sampled_from(['a', 'b', 'c', 'd', None]), min_size=n, max_size=n))
    positive = draw(st.sampled_from(sorted(set(yt) | set(yp))))
    return yt, yp, g, positive

def reference(yt, yp, g, positive) -> dict:
    "Per-group figures the slow, obvious way: a dict group → (count, base, selection, accuracy, tpr, fpr)."
    out = {}
    for key in dict.fromkeys(g):
        rows = [(a == positive, b == positive) for a, b, k in zip(yt, yp, g) if k == key]
        pos = [b for a, b in rows if a]; neg = [b for a, b in rows if not a]
        out[key] = (len(rows), sum(a for a, _ in rows) / len(rows), sum(b for _, b in rows) / len(rows),
                    sum(a == b for a, b in rows) / len(rows),
                    sum(pos) / len(pos) if pos else math.nan, sum(neg) / len(neg) if neg else math.nan)
    return out

def gap(values) -> float:
    "max − min over the defined values."
    v = [x for x in values if not math.isnan(x)]
    return max(v) - min(v) if v else math.nan

def same(a:float, b:float) -> bool: return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)

def row(rep:FairnessReport, key):
    "The report's row for group `key` (None: the missing group)."
    idx = rep.by_group.index
    return rep.by_group.iloc[int(np.flatnonzero(idx.isna())[0])] if key is None else rep.by_group.loc[key]

# ---------------------------------------------------------------- against the reference

@fast(150)
@given(st.one_of(cases(2), cases(3)))
def test_matches_reference(case):
    yt, yp, g, positive = case
    rep, ref = fairness(yt, yp, g, positive=positive), reference(*case)
    assert len(rep.by_group) == len(ref) == rep.overall['groups']
    assert rep.by_group['count'].sum() == rep.overall['count'] == len(yt)
    for key, want in ref.items():
        got = row(rep, key)
        assert all(same(float(got[c]), w) for c, w in zip(RATES, want)), (key, got, want)
    cols = list(zip(*ref.values()))
    assert same(rep.gaps['demographic_parity_difference'], gap(cols[2]))
    assert same(rep.gaps['accuracy_difference'], gap(cols[3]))
    assert same(rep.gaps['tpr_difference'], gap(cols[4])) and same(rep.gaps['fpr_difference'], gap(cols[5]))
    assert same(rep.gaps['equalised_odds_difference'], max(x for x in (gap(cols[4]), gap(cols[5])) if not math.isnan(x)))
    assert same(rep.gaps['demographic_parity_ratio'], min(cols[2]) / max(cols[2]) if max(cols[2]) else 1.0)
    overall = reference(yt, yp, [0] * len(yt), positive)[0]
    assert all(same(rep.overall[c], w) for c, w in zip(RATES, overall))

@fast(100)
@given(st.one_of(cases(2), cases(3)))
def test_rates_are_probabilities_and_ratio_at_most_one(case):
    rep = fairness(*case[:3], positive=case[3])
    rates = rep.by_group[list(RATES[1:])].to_numpy(float)
    assert ((rates >= 0) & (rates <= 1) | np.isnan(rates)).all()
    assert not rep.by_group[['base_rate', 'selection_rate', 'accuracy']].isna().any().any()
    assert 0 <= rep.gaps['demographic_parity_ratio'] <= 1
    g = {k: v for k, v in rep.gaps.items() if k != 'demographic_parity_ratio'}
    assert all(0 <= v <= 1 for v in g.values() if not math.isnan(v))
    assert not math.isnan(rep.gaps['equalised_odds_difference'])   # every group has positives or negatives
    if rep.overall['groups'] == 1:                                 # nothing to compare: gaps 0 (NaN where undefined), ratio 1
        assert rep.gaps['demographic_parity_ratio'] == 1.0 and rep.gaps['equalised_odds_difference'] == 0.0
        assert all(v == 0.0 or (math.isnan(v) and k in ('tpr_difference', 'fpr_difference')) for k, v in rep.gaps.items() if k != 'demographic_parity_ratio')

@fast(100)
@given(cases(3))
def test_perfect_predictions(case):
    yt, _, g, positive = case
    if positive not in yt: positive = yt[0]
    rep = fairness(yt, yt, g, positive=positive)
    assert rep.gaps['equalised_odds_difference'] == 0 and rep.gaps['accuracy_difference'] == 0
    assert (rep.by_group['accuracy'] == 1).all()
    assert set(rep.by_group['tpr'].dropna()) <= {1.0} and set(rep.by_group['fpr'].dropna()) <= {0.0}
    assert (rep.by_group['selection_rate'] == rep.by_group['base_rate']).all()

@fast(60)
@given(cases(3), st.randoms(use_true_random=False))
def test_multiclass_is_one_vs_rest(case, rnd):
    yt, yp, g, positive = case
    multi = fairness(yt, yp, g, positive=positive)
    binary = fairness([v == positive for v in yt], [v == positive for v in yp], g, positive=True)
    pd.testing.assert_frame_equal(multi.by_group, binary.by_group)
    assert multi.gaps == pytest.approx(binary.gaps, nan_ok=True)

# ---------------------------------------------------------------- groups, order and index

@fast(60)
@given(cases(2), st.lists(st.sampled_from('xy'), min_size=50, max_size=50))
def test_several_columns_are_their_combinations(case, other):
    yt, yp, g, positive = case
    g = ['?' if v is None else v for v in g]
    h = other[:len(g)]
    both = fairness(yt, yp, pd.DataFrame({'site': g, 'sex': h}), positive=positive)
    combined = fairness(yt, yp, [f'{a}|{b}' for a, b in zip(g, h)], positive=positive)
    assert both.by_group.index.names == ['site', 'sex']
    assert [f'{a}|{b}' for a, b in both.by_group.index] == list(combined.by_group.index)
    np.testing.assert_allclose(both.by_group.to_numpy(float), combined.by_group.to_numpy(float))
    assert both.gaps == pytest.approx(combined.gaps, nan_ok=True)

@fast(60)
@given(cases(2), st.randoms(use_true_random=False))
def test_row_order_and_index_labels_do_not_matter(case, rnd):
    yt, yp, g, positive = case
    order = list(range(len(yt))); rnd.shuffle(order)
    rep = fairness(yt, yp, g, positive=positive)
    shuffled = fairness([yt[i] for i in order], [yp[i] for i in order], [g[i] for i in order], positive=positive)
    pd.testing.assert_frame_equal(rep.by_group, shuffled.by_group)
    labelled = fairness(pd.Series(yt, index=order), pd.Series(yp, index=order[::-1]), pd.Series(g, name='site'), positive=positive)
    np.testing.assert_allclose(labelled.by_group.to_numpy(float), rep.by_group.to_numpy(float))   # matched by position
    assert labelled.by_group.index.name == 'site'

def test_missing_positives_give_nan_tpr_and_gaps_skip_it():
    rep = fairness([1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 0, 0], ['a', 'a', 'b', 'b', 'c', 'c'])
    assert math.isnan(rep.by_group.loc['b', 'tpr'])
    assert rep.gaps['tpr_difference'] == 1.0 and rep.gaps['equalised_odds_difference'] == 1.0
    healthy = fairness([0, 0, 0], [1, 0, 0], ['a', 'b', 'b'])
    assert math.isnan(healthy.overall['tpr']) and math.isnan(healthy.gaps['tpr_difference'])
    assert healthy.gaps['equalised_odds_difference'] == 1.0

def test_single_group_has_no_gaps():
    rep = fairness([1, 0, 1, 0], [0, 0, 1, 1], pd.Series(['x'] * 4, name='site'))
    assert rep.overall['groups'] == 1
    assert rep.gaps == {**dict.fromkeys(GAPS, 0.0), 'demographic_parity_ratio': 1.0}
    sick = fairness([1, 1], [1, 0], ['x', 'x'])                # no negatives: the FPR gap is undefined, the rest is 0
    assert math.isnan(sick.gaps['fpr_difference']) and sick.gaps['equalised_odds_difference'] == 0.0
    nobody = fairness([1, 0], [0, 0], ['x', 'y'])              # no group selected: equal rates, ratio 1
    assert nobody.gaps['demographic_parity_ratio'] == 1.0 and nobody.gaps['demographic_parity_difference'] == 0.0

# ---------------------------------------------------------------- output

def test_to_dict_is_json():
    rep = fairness(['sick', 'well', 'well', 'sick'], ['sick', 'sick', 'well', 'well'],
                   pd.DataFrame({'site': ['a', 'a', 'b', 'b'], 'sex': ['f', 'f', 'm', 'm']}), positive='sick')
    d = rep.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d['group_by'] == ['site', 'sex'] and d['positive'] == 'sick'
    assert [r['group'] for r in d['by_group']] == [['a', 'f'], ['b', 'm']]
    assert d['by_group'][0] == {'group': ['a', 'f'], 'count': 2, 'base_rate': .5, 'selection_rate': 1.0, 'accuracy': .5, 'tpr': 1.0, 'fpr': 1.0}
    assert set(d['gaps']) == set(GAPS) and d['overall']['groups'] == 2
    assert fairness([1, 0], [1, 0], ['a', 'b']).to_dict()['by_group'][1]['tpr'] is None   # NaN becomes null

def test_plot_returns_axes():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rep = fairness([1, 0, 0, 1, 0], [1, 1, 0, 0, 0], ['a', 'a', 'b', 'c', 'c'])
    fig, ax = plt.subplots()
    assert rep.plot(ax) is ax
    assert len(ax.patches) == 4 * 3 and len(ax.get_xticklabels()) == 3
    assert rep.plot() is not None
    plt.close('all')

# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('args, kw, message', [
    (([1, 0], [1, 0, 1], ['a', 'b']), {}, 'different lengths: 2, 3 and 2'),
    (([1, 0], [1, 0], ['a']), {}, 'different lengths: 2, 2 and 1'),
    (([], [], []), {}, 'no records'),
    ((['yes', 'no'], ['no', 'no'], ['a', 'b']), {}, "positive class 1"),
    (([0, 1], [1, 1], ['a', 'b']), {'positive': 2}, 'positive class 2'),
    (([1, np.nan], [1, 0], ['a', 'b']), {}, 'y_true has 1 missing value'),
    (([1, 0], pd.Series([None, None]), ['a', 'b']), {}, 'y_pred has 2 missing values'),
    (([[1, 0]], [[1, 0]], ['a']), {}, 'one column of labels'),
    ((pd.DataFrame({'y': [1, 0]}), [1, 0], ['a', 'b']), {}, 'one column of labels'),
    (([1, 0], [1, 0], np.array([['a', 'b'], ['a', 'b']])), {}, 'groups must be one column'),
    (([1, 0], [1, 0], pd.DataFrame(index=[0, 1])), {}, 'groups has no columns'),
])
def test_bad_input(args, kw, message):
    with pytest.raises(InputError, match=message) as e: fairness(*args, **kw)
    assert str(e.value).count('. ') == 0                      # one sentence
