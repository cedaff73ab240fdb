"""`leptonhub.apps.sentiment`: finance sentiment and topic classifiers, their scores, and the surge monitor.

The classifiers here are the TF-IDF ones (seconds on a CPU, no neural model needed): they must learn the shipped tweets well
above chance. The scores are checked against hand-worked examples. The monitor must find a surge of bearish tweets injected
into a synthetic stream — for the right ticker, soon after the surge begins — raise nothing on the same stream without the
surge, find a slow rise only the CUSUM can prove, stay silent on groups too small to judge, and refuse bad files with an
`InputError` that names the file and the column.
"""
from __future__ import annotations
import json
import numpy as np, pandas as pd, pytest
from leptonhub.core import InputError
from leptonhub.apps.sentiment import (SENTIMENTS, TOPICS, alert_records, cashtags, classify_stream, detect, evaluate, evaluate_files, finance_tweets,
                                      label_names, monitor, monitor_file, negative_labels, parse_times, scores, sentiment_model,
                                      synthetic_stream, tail_z, topic_model, windowed)
from leptonhub.apps.text import TextClassifier

SURGE = pd.Timestamp('2026-03-05 13:00')

@pytest.fixture(scope='module')
def sent():
    "The TF-IDF sentiment model on the shipped training tweets."
    return sentiment_model(method='tfidf')

# ------------------------------------------------------------------ classifiers and scores

def test_sentiment_learns_shipped_tweets(sent):
    valid = finance_tweets('sentiment', 'valid')
    assert sent.classes_.tolist() == SENTIMENTS
    s = scores(valid['label_name'], sent.predict(valid['text']))
    majority = valid['label_name'].value_counts(normalize=True).max()       # 0.656: always 'Neutral'
    assert s['accuracy'] > majority + 0.1 and s['macro_f1'] > 0.65
    assert s['f1']['Bearish'] > 0.5

KEEP = ['Earnings', 'Fed | Central Banks', 'Dividend', 'Energy | Oil', 'Stock Movement']

@pytest.fixture(scope='module')
def topics():
    "A TF-IDF topic model of five topics, 100 shipped tweets each; integer labels are mapped to their names."
    tr = finance_tweets('topic', 'train')
    tr = tr[tr.label_name.isin(KEEP)].groupby('label_name').head(100)
    return topic_model(tr['text'], tr['label'], method='tfidf')

def test_topic_learns_a_small_fixed_task(topics):
    "Five topics: far above the 20 % of guessing."
    va = finance_tweets('topic', 'valid')
    va = va[va.label_name.isin(KEEP)]
    assert sorted(topics.classes_) == sorted(KEEP)
    assert scores(va['label_name'], topics.predict(va['text']))['accuracy'] > 0.7

def test_scores_by_hand():
    s = scores(['a', 'a', 'b', 'b', 'c'], ['a', 'b', 'b', 'b', 'a'])
    assert s['accuracy'] == pytest.approx(0.6)
    assert s['f1'] == pytest.approx({'a': 0.5, 'b': 0.8, 'c': 0.0})     # a: P ½ R ½; b: P ⅔ R 1; c: never found
    assert s['macro_f1'] == pytest.approx(1.3 / 3)
    s = scores([0, 1, 1, 1], [0, 1, 1, 2])                              # a class only predicted still counts: F1 0
    assert s['accuracy'] == 0.75 and s['f1'] == pytest.approx({'0': 1.0, '1': 0.8, '2': 0.0}) and s['macro_f1'] == pytest.approx(0.6)
    with pytest.raises(InputError, match='one prediction per label'): scores([1, 2], [1])

def test_label_names():
    assert label_names([2, 0, 1], SENTIMENTS).tolist() == ['Neutral', 'Bearish', 'Bullish']
    assert len(TOPICS) == 20 and label_names([19], TOPICS).tolist() == ['Stock Movement']
    for bad in ([3], ['Bearish'], [1.5]):
        with pytest.raises(InputError, match='is not one of the integers 0 … 2'): label_names(bad, SENTIMENTS)

def test_evaluate_files(tmp_path):
    tr, va = finance_tweets('sentiment', 'train').iloc[::2], finance_tweets('sentiment', 'valid').iloc[::2]
    tr[['text', 'label']].rename(columns={'text': 'tweet'}).to_csv(tmp_path/'train.csv', index=False)
    va[['text', 'label']].rename(columns={'text': 'tweet'}).to_parquet(tmp_path/'test.parquet')
    r = evaluate_files(tmp_path/'train.csv', tmp_path/'test.parquet', text='tweet', method='tfidf')
    assert r['method'] == 'tfidf' and r['n_train'] == 1500 and r['n_test'] == 500 and r['classes'] == ['0', '1', '2']
    assert r['accuracy'] > 0.72 and r['macro_f1'] > 0.6 and r['seconds'] >= r['fit_seconds'] > 0
    json.dumps(r)

def test_evaluate_scores_an_ensemble_and_each_member():
    "The ensemble's accuracy is its own prediction's, each member's is that member's alone."
    tr, va = finance_tweets('sentiment', 'train').iloc[::10], finance_tweets('sentiment', 'valid').iloc[::5]
    r = evaluate(tr, va, method='embed+tfidf', seed=3)
    clf = TextClassifier('embed+tfidf', seed=3).fit(tr['text'], tr['label'])
    acc = lambda m: scores(va['label'], m.predict(va['text']))['accuracy']
    assert list(r['members']) == ['0: embed', '1: tfidf'] and r['members'] == {'0: embed': acc(clf.members_[0]), '1: tfidf': acc(clf.members_[1])}
    assert r['accuracy'] == acc(clf) and r['accuracy'] > 0.7

def test_evaluate_files_bad_input(tmp_path):
    good = tmp_path/'good.csv'
    pd.DataFrame({'text': ['shares jump', 'shares sink', 'flat day'], 'label': [1, 0, 2]}).to_csv(good, index=False)
    pd.DataFrame({'text': ['up', 'down'], 'label': [1, 1]}).to_csv(tmp_path/'one.csv', index=False)
    pd.DataFrame({'text': ['up', None], 'label': [1, 0]}).to_csv(tmp_path/'hole.csv', index=False)
    (tmp_path/'empty.csv').write_text('')
    (tmp_path/'header.csv').write_text('text,label\n')
    cases = [(dict(train=good, test=good, text='tweet'), "good.csv: the training file has no column 'tweet'"),
             (dict(train=good, test=good, label='y'), "column 'y'"),
             (dict(train=tmp_path/'one.csv', test=good), "one.csv: the labels in column 'label' hold a single class"),
             (dict(train=good, test=tmp_path/'empty.csv'), 'empty.csv: the test file is empty'),
             (dict(train=good, test=tmp_path/'header.csv'), 'header.csv: the test file has no rows'),
             (dict(train=tmp_path/'hole.csv', test=good), "hole.csv: the training file has a missing value (row 1, column 'text')"),
             (dict(train=tmp_path/'nope.csv', test=good), 'nope.csv: the training file was not found')]
    for kw, msg in cases:
        with pytest.raises(InputError) as e: evaluate_files(**kw, method='tfidf')
        assert msg in str(e.value), (kw, str(e.value))

# ------------------------------------------------------------------ monitoring: the parts

def test_cashtags_and_times():
    assert cashtags('$CCL $rcl - Nomura cuts; $CCL falls $5.20, US$3bn') == ['CCL', 'RCL']
    assert cashtags('$BRK.B up') == ['BRK.B'] and cashtags('') == []
    t = parse_times(pd.Series(['2026-03-05 13:00', '2026-03-05T14:30:00+01:00']))
    assert t.tolist() == [pd.Timestamp('2026-03-05 13:00'), pd.Timestamp('2026-03-05 13:30')]
    with pytest.raises(InputError, match="s.csv: cannot read the time '32/13/2026'.*\\(row 1, column 'when'\\)"):
        parse_times(pd.Series(['2026-03-05', '32/13/2026'], name='when'), 's.csv')

def test_windowed_by_hand():
    items = pd.DataFrame({'time': pd.to_datetime(['2026-03-02 09:10', '2026-03-02 09:40', '2026-03-02 11:05', '2026-03-02 09:30']),
                          'group': ['a', 'a', 'a', 'b'], 'negative': [True, False, True, True]})
    w = windowed(items, window='2h', step='1h').set_index(['group', 'time'])
    a = w.loc['a']
    assert a['count'].tolist() == [2, 2, 1] and a['negatives'].tolist() == [1, 1, 1] and a['share'].tolist() == [0.5, 0.5, 1.0]
    assert w.loc['b']['count'].tolist() == [1, 1, 0] and np.isnan(w.loc['b']['share'].iloc[-1])

def test_tail_z_by_hand():
    # P(K ≥ 3 | n = 10, p = 0.1) = 1 − (0.9¹⁰ + 10·0.1·0.9⁹ + 45·0.01·0.9⁸) = 0.0702 → z = 1.474
    assert tail_z(3, 10, 0.1) == pytest.approx(1.474, abs=1e-3)
    assert tail_z(0, 10, 0.1) == -10 and tail_z(10, 10, 0.1) == pytest.approx(6.361, abs=1e-3) and np.isnan(tail_z(0, 0, 0.1))

def test_negative_labels():
    assert negative_labels(['Bearish', 'Bullish', 'Neutral']) == ['Bearish']
    assert negative_labels(['neg', 'pos']) == ['neg'] and negative_labels([0, 1, 2], negative=0) == [0]
    assert negative_labels([0, 1, 2], negative='0') == [0] and negative_labels(['a', 'b', 'c'], negative=['a', 'c']) == ['a', 'c']
    with pytest.raises(InputError, match='say which are negative'): negative_labels([0, 1, 2])
    with pytest.raises(InputError, match="negative label 'bad' is not one of"): negative_labels(['Bearish'], negative='bad')

# ------------------------------------------------------------------ monitoring: surges

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_monitor_finds_the_injected_surge(seed):
    "On the true labels: one alert, for BA, raised during the 8-hour surge; and nothing on the same stream without it."
    stream = synthetic_stream(seed=seed)
    m = monitor(stream, group='ticker', sentiment='label')
    assert m.alerts['group'].tolist() == ['BA'], m.alerts
    a = m.alerts.iloc[0]
    assert SURGE < a['time'] <= SURGE + pd.Timedelta(hours=8)
    assert a['share'] - a['baseline'] >= 0.15 and a['count'] >= 10 and (a['z'] >= 4 or a['cusum'] >= 8)
    assert len(a['examples']) == 3 and all(t.startswith('$BA - ') for t in a['examples'])
    assert len(monitor(synthetic_stream(surge=None, seed=seed), group='ticker', sentiment='label').alerts) == 0

def test_monitor_end_to_end_with_a_model(sent, tmp_path):
    "The model classifies, cashtags group: the surge is found from the text alone; the flat stream stays silent."
    synthetic_stream(seed=0).drop(columns=['ticker', 'label', 'surge']).to_csv(tmp_path/'stream.csv', index=False)
    al = monitor_file(tmp_path/'stream.csv', group='$', model=sent, plot=tmp_path/'m.png')
    assert al['group'].tolist() == ['$BA'] and SURGE < al['time'].iloc[0] <= SURGE + pd.Timedelta(hours=8)
    assert (tmp_path/'m.png').stat().st_size > 10_000
    rec = json.loads(json.dumps(alert_records(al)))
    assert rec[0]['group'] == '$BA' and rec[0]['time'].startswith('2026-03-05T') and rec[0]['baseline'] < rec[0]['share']
    flat = synthetic_stream(surge=None, seed=0)
    assert len(monitor(flat, group='$', model=sent).alerts) == 0

def test_monitor_by_predicted_topic(topics):
    stream = synthetic_stream(seed=0)
    m = monitor(stream, group='topic', topics=topics, sentiment='label')
    assert len(m.items) == len(stream) and set(m.items['group']) <= set(KEEP) and m.series['group'].nunique() >= 3
    assert (m.items['group'] == topics.predict(m.items['text'])).all()

def _steady(hours:int, per_hour:int, every:int, start='2026-03-02', group='g') -> pd.DataFrame:
    "`per_hour` items an hour, evenly spaced, every `every`-th one negative."
    t = pd.Timestamp(start) + pd.to_timedelta(np.arange(hours * per_hour) * 3600 / per_hour, 's')
    return pd.DataFrame({'time': t, 'group': group, 'text': 'x', 'label': np.where(np.arange(len(t)) % every == 0, 'Bearish', 'Neutral')})

def test_cusum_finds_a_slow_rise():
    "Two items an hour: one in ten negative for four days, then one in three. No 6-hour window proves it; the CUSUM does."
    df = pd.concat([_steady(96, 2, 10), _steady(48, 2, 3, start='2026-03-06')], ignore_index=True)
    m = monitor(df, sentiment='label')
    assert len(m.alerts) >= 1 and set(m.alerts['method']) == {'cusum'}
    assert m.alerts['time'].min() > pd.Timestamp('2026-03-06') and m.series['z'].max() < 4
    assert len(monitor(_steady(144, 2, 10), sentiment='label').alerts) == 0

def test_small_groups_are_not_judged():
    "A group that turns all-negative but never fills a window with `min_count` items raises nothing."
    quiet = _steady(96, 1, 10, group='quiet')
    quiet.loc[quiet.time >= '2026-03-05', 'label'] = 'Bearish'
    df = pd.concat([_steady(96, 4, 10), quiet], ignore_index=True)
    assert len(monitor(df, group='group', sentiment='label', window='6h').alerts) == 0
    al = monitor(df, group='group', sentiment='label', window='12h').alerts                 # twelve items a window: judged
    assert al['group'].tolist() == ['quiet']

def test_monitor_bad_input(tmp_path, sent):
    s = tmp_path/'s.csv'
    pd.DataFrame({'when': ['2026-03-02 09:00', '2026-03-02 10:00'], 'text': ['a', None]}).to_csv(s, index=False)
    with pytest.raises(InputError, match="s.csv: the stream has a missing text \\(row 1, column 'text'\\)"): monitor_file(s, time='when', model=sent)
    with pytest.raises(InputError, match="s.csv: the stream has no column 'time'"): monitor_file(s, model=sent)
    pd.DataFrame({'when': ['2026-03-02 09:00'], 'text': ['a']}).to_csv(tmp_path/'d.csv', index=False)
    with pytest.raises(InputError, match="d.csv: the stream has no column 'desk'"): monitor_file(tmp_path/'d.csv', time='when', group='desk', model=sent)
    (tmp_path/'e.csv').write_text('time,text\n')
    with pytest.raises(InputError, match='e.csv: the stream has no rows'): monitor_file(tmp_path/'e.csv', model=sent)
    pd.DataFrame({'time': ['2026-03-02', 'soon'], 'text': ['a', 'b']}).to_csv(s, index=False)
    with pytest.raises(InputError, match="s.csv: cannot read the time 'soon'.*\\(row 1, column 'time'\\)"): monitor_file(s, model=sent)
    pd.DataFrame({'time': ['2026-03-02'], 'text': ['a'], 'y': [1]}).to_csv(s, index=False)
    with pytest.raises(InputError, match='say which are negative'): monitor_file(s, sentiment='y')
    pd.DataFrame({'text': ['a', 'b'], 'label': ['Bearish', 'Bearish']}).to_csv(tmp_path/'t.csv', index=False)
    with pytest.raises(InputError, match="t.csv: the labels in column 'label' hold a single class"): monitor_file(s, train=tmp_path/'t.csv', method='tfidf')
