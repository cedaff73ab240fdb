"""`leptonhub.apps.support`: the measures against hand-computed examples, the hand-over threshold, answers, retrieval, the
assistant on the shipped CLINC150 subset, and `evaluate_files` with bad files.

The assistant must learn the subset's 30 intents well above chance (1/30), hand over out-of-scope questions that a plain
classifier would answer wrongly, and every bad file must raise an `InputError` that names the file and the column.
"""
from __future__ import annotations
import json
import numpy as np, pandas as pd, pytest
from leptonhub.core import InputError
from leptonhub.apps.support import (FALLBACK, Retriever, SupportBot, _holdout, answer_templates, choose_threshold, clinc150_small, decide,
                                    evaluate_files, in_scope_accuracy, oos_recall, render, support_metrics, threshold_curve)

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def data():
    return {s: clinc150_small(s) for s in ('train', 'val', 'test', 'answers')}

@pytest.fixture(scope='module')
def bot(data):
    "An assistant on frozen embeddings, its threshold chosen on the validation questions."
    return SupportBot('embed', answers=data['answers'], device='cpu').fit(data['train'].text, data['train'].intent, data['val'].text, data['val'].intent)

@pytest.fixture
def files(tmp_path, data):
    data['train'].to_csv(tmp_path/'train.csv', index=False); data['test'].to_csv(tmp_path/'test.csv', index=False)
    return tmp_path

def test_measures_match_a_hand_computed_example():
    t = ['a', 'a', 'b', 'b', 'oos', 'oos', 'oos', 'oos']
    p = ['a', 'b', 'b', 'oos', 'oos', 'oos', 'oos', 'a']
    assert in_scope_accuracy(t, p, 'oos') == 2 / 4
    assert oos_recall(t, p, 'oos') == 3 / 4
    m = support_metrics(t, p, 'oos')
    assert m['accuracy'] == 5 / 8 and m['oos_precision'] == 3 / 4 and (m['n_in_scope'], m['n_oos']) == (4, 4)
    f1 = {'a': 2 * .5 * .5 / (.5 + .5), 'b': 2 * .5 * .5 / (.5 + .5), 'oos': 2 * .75 * .75 / 1.5}  # precision, recall: a .5 .5, b .5 .5, oos .75 .75
    assert m['macro_f1'] == pytest.approx(np.mean(list(f1.values())))
    assert set(support_metrics(t, t)) == {'n', 'accuracy', 'macro_f1'}
    with pytest.raises(InputError, match='3 true labels but 2 predictions'): support_metrics(['a'] * 3, ['a'] * 2)

def test_decide_hands_over_below_the_threshold_or_on_the_oos_class():
    P = np.array([[.7, .2, .1], [.3, .3, .4], [.5, .1, .4]])
    pred, conf = decide(P, ['x', 'y', 'oos'], 0.6)
    assert pred.tolist() == ['x', 'oos', 'oos'] and conf.tolist() == [.7, .3, .5]
    assert decide(P, ['x', 'y', 'z'], 0.0, oos_label='none')[0].tolist() == ['x', 'z', 'x']

def test_the_threshold_curve_is_monotone_and_the_choice_keeps_in_scope_accuracy():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4) * .3, 400)
    y = np.array(['a', 'b', 'c', 'oos'], dtype=object)[rng.integers(0, 4, 400)]
    c = threshold_curve(P, ['a', 'b', 'c', 'oos'], y)
    assert c.in_scope_accuracy.is_monotonic_decreasing and c.oos_recall.is_monotonic_increasing
    tau = choose_threshold(c, 0.02)
    kept = c[c.threshold == tau].in_scope_accuracy.iloc[0]
    assert kept >= c.in_scope_accuracy.iloc[0] - 0.02
    assert (c[c.threshold > tau].in_scope_accuracy < c.in_scope_accuracy.iloc[0] - 0.02).all()
    assert choose_threshold(c, 1.0) == 1.0

def test_answers_and_templates():
    kb = answer_templates(['balance', 'pin_change'], pd.DataFrame({'intent': ['balance'], 'answer': ['See the home screen.']}))
    assert kb['balance'] == 'See the home screen.'
    assert render(kb['pin_change'], 'pin_change') == 'I can help with pin change. Let me open that for you.'
    assert render('{question}? {x}', 'a', 'why') == 'why? {x}'
    with pytest.raises(InputError, match='needs columns intent and answer'): answer_templates(['a'], pd.DataFrame({'intent': ['a']}))

def test_holdout_is_stratified_and_disjoint():
    y = np.array(['a'] * 50 + ['b'] * 30 + ['c'] * 20, dtype=object)
    tr, va = _holdout(y, 0.2, 0)
    assert len(va) == 20 and not set(tr) & set(va) and len(tr) + len(va) == 100
    assert pd.Series(y[va]).value_counts().to_dict() == {'a': 10, 'b': 6, 'c': 4}

def test_the_assistant_learns_intents_and_hands_over_out_of_scope(bot, data):
    te = data['test']
    m = support_metrics(te.intent, bot.predict(te.text), 'oos')
    assert m['in_scope_accuracy'] > 0.85 and m['oos_recall'] > 0.5, m
    plain = support_metrics(te.intent, decide(bot.classifier_.predict_proba(te.text), bot.classes_, 0.0)[0], 'oos')
    assert bot.threshold_ > 0 and m['oos_recall'] > plain['oos_recall']              # the threshold hands over more unknown questions
    r = bot.reply(['what is the weather in paris tomorrow', 'my card got declined at the supermarket'])
    assert r.handed_over.tolist() == [True, False]
    assert r.answer[0] == FALLBACK and r.intent[1] == 'card_declined'
    assert r.answer[1] == data['answers'].set_index('intent').answer['card_declined']

def test_retrieval_finds_the_nearest_answered_question(bot):
    hits = bot.similar(['someone took my wallet with my visa inside', 'i forgot my pin'], k=2)
    assert len(hits) == 4 and hits.groupby('query')['score'].is_monotonic_decreasing.all()
    assert hits[hits['rank'] == 1].intent.tolist() == ['report_lost_card', 'pin_change']
    tf = Retriever(['reset my pin', 'show my balance'], method='tfidf').search(['what is my balance'], k=1)
    assert tf.text[0] == 'show my balance'
    with pytest.raises(InputError, match='2 texts to index but 1 rows'): Retriever(['a', 'b'], pd.DataFrame({'x': [1]}))

def test_evaluate_files_reports_the_benchmark_numbers(files):
    r = evaluate_files(files/'train.csv', files/'test.csv', 'text', 'intent', oos_label='oos', method='tfidf')
    assert {'accuracy', 'macro_f1', 'seconds', 'in_scope_accuracy', 'oos_recall', 'threshold'} <= set(r)
    assert r['in_scope_accuracy'] > 0.5 and r['n_test'] == 450 and r['method'] == 'tfidf'
    json.dumps(r)
    plain = evaluate_files(files/'train.csv', files/'test.csv', 'text', 'intent', method='tfidf')
    assert 'oos_recall' not in plain and plain['accuracy'] > 0.4

@pytest.mark.parametrize('make, args, words', [
    (lambda d: d['train'], ('question', 'intent'), ("train.csv: the training file has no column 'question'", "(column 'question')")),
    (lambda d: d['train'], ('text', 'label'), ("train.csv: the training file has no column 'label'",)),
    (lambda d: d['train'].assign(intent='balance'), ('text', 'intent'), ('train.csv: ', "single class ('balance')", "(column 'intent')")),
    (lambda d: d['train'].assign(text=[None] + d['train'].text.tolist()[1:]), ('text', 'intent'), ('train.csv: ', 'missing value (NaN/None) at position 0', "(column 'text')")),
])
def test_bad_training_files_name_the_file_and_column(tmp_path, data, files, make, args, words):
    make(data).to_csv(tmp_path/'train.csv', index=False)
    with pytest.raises(InputError) as e: evaluate_files(tmp_path/'train.csv', files/'test.csv', *args, method='tfidf')
    for w in words: assert w in str(e.value)

def test_an_empty_or_missing_test_file_is_refused(tmp_path, data, files):
    data['test'].iloc[:0].to_csv(tmp_path/'empty.csv', index=False)
    with pytest.raises(InputError, match='empty.csv: the test file has no rows'):
        evaluate_files(files/'train.csv', tmp_path/'empty.csv', 'text', 'intent', method='tfidf')
    data['test'].drop(columns='intent').to_csv(tmp_path/'nolabel.csv', index=False)
    with pytest.raises(InputError, match="nolabel.csv: the test file has no column 'intent'"):
        evaluate_files(files/'train.csv', tmp_path/'nolabel.csv', 'text', 'intent', method='tfidf')
    with pytest.raises(InputError, match='cannot read the table'):
        evaluate_files(files/'train.csv', tmp_path/'missing.csv', 'text', 'intent', method='tfidf')

def test_unfitted_assistant_and_bad_settings_are_refused():
    with pytest.raises(InputError, match='not fitted yet'): SupportBot('tfidf').reply(['hello'])
    with pytest.raises(InputError, match='holdout must be a share'): SupportBot('tfidf', holdout=1.5)
    with pytest.raises(InputError, match="split must be 'train'"): clinc150_small('dev')
