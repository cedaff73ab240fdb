"""`leptonhub.apps.train`: the training loop, DP-SGD through Opacus, and membership-inference attacks.

Every task here is tiny and seeded, so the whole file runs in seconds on one CPU core: the loop must learn a fixed synthetic
task, repeat itself exactly with a seed, stop early and restore its best weights, log its history, run dict, tuple and
Hugging Face-style models alike, train under DP-SGD within its ε, and refuse bad input with an `InputError` that says what to
change. The attacks must find an over-fitted model's members, find nothing where there is nothing, and count exposed members
as documented.
"""
from __future__ import annotations
import json
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest, torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset
from leptonhub.core import InputError
from leptonhub.apps.train import (DPConfig, TabularMLP, evaluate, exposure, fit, membership_attack, mlp_for, model_card, seed_everything,
                                  sklearn_baseline, split_rows, train_epoch)
from leptonhub.platform import data

pytestmark = pytest.mark.usefixtures('one_thread')

def ring(n=384, seed=0) -> TensorDataset:
    "Points in the plane; class 1 inside a ring (not linearly separable)."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return TensorDataset(x, (x.norm(dim=1) < 1.1).long())

def net(seed=0, hidden=32) -> nn.Module:
    seed_everything(seed)
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))

def deep(seed=0) -> nn.Module:
    "Wide enough to memorise a few dozen random labels."
    seed_everything(seed)
    return nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))

def table(n=300, seed=0) -> pd.DataFrame:
    "A small table with numbers, a category, missing values and a label that depends on them."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'age': rng.normal(55, 10, n).round(), 'chol': rng.normal(240, 40, n), 'site': rng.choice(['a', 'b', 'c'], n)})
    df.loc[rng.random(n) < 0.1, 'chol'] = np.nan
    df['sick'] = (df.age - 55) / 10 + (df.site == 'c') + rng.normal(0, 0.5, n) > 0.5
    return df

def flat(model) -> torch.Tensor: return torch.cat([p.detach().flatten() for p in model.parameters()])

# ---------------------------------------------------------------- the loop

def test_loop_learns_the_ring():
    train, valid = ring(), ring(256, 1)
    r = fit(net(), DataLoader(train, batch_size=64, shuffle=True), DataLoader(valid, batch_size=256), epochs=10, lr=1e-2, progress=False, device='cpu')
    h = r.history
    assert h.train_loss.iloc[-1] < 0.5 * h.train_loss.iloc[0]
    assert r.metrics['accuracy'] > 0.85 > 0.6 > max(np.mean(valid.tensors[1].numpy()), 1 - np.mean(valid.tensors[1].numpy()))
    assert r.metrics['roc_auc'] > 0.9 and r.device == 'cpu' and r.epochs == 10 and r.epsilon is None
    assert set(r.metrics) >= {'accuracy', 'f1', 'roc_auc', 'loss', 'report', 'report_text', 'y_true', 'y_pred', 'proba'}
    assert len(r.metrics['y_pred']) == 256 and r.metrics['report']['accuracy'] == pytest.approx(r.metrics['accuracy'])

def test_same_seed_same_weights_and_history():
    runs = [fit(net(), DataLoader(ring(), batch_size=32, shuffle=True), DataLoader(ring(128, 1), batch_size=128), epochs=3, seed=7,
                progress=True, device='cpu') for _ in range(2)]
    assert torch.equal(flat(runs[0].model), flat(runs[1].model))
    pd.testing.assert_frame_equal(runs[0].history.drop(columns='seconds'), runs[1].history.drop(columns='seconds'))
    other = fit(net(), DataLoader(ring(), batch_size=32, shuffle=True), epochs=3, seed=8, progress=False, device='cpu')
    assert not torch.equal(flat(runs[0].model), flat(other.model))        # the seed drives the shuffling

def test_early_stopping_stops_and_restores_the_best_weights():
    "Validation labels are the opposite of the training ones: the validation loss is best after epoch 1 and only grows."
    train = ring()
    flipped = TensorDataset(train.tensors[0], 1 - train.tensors[1])
    run = lambda **kw: fit(net(), DataLoader(train, batch_size=64, shuffle=True), DataLoader(flipped, batch_size=384), lr=1e-2, progress=False, device='cpu', **kw)
    r = run(epochs=20, patience=3)
    assert (r.best_epoch, r.epochs) == (1, 4)
    assert r.history.valid_loss.idxmin() == 0 and r.best == pytest.approx(r.history.valid_loss.iloc[0])
    assert torch.equal(flat(r.model), flat(run(epochs=1).model))          # the weights of epoch 1, not of epoch 4
    assert r.metrics['loss'] == pytest.approx(r.best)
    kept = run(epochs=4)                                                    # without patience the last weights stay
    assert not torch.equal(flat(kept.model), flat(r.model)) and kept.best_epoch == 1

def test_history_csv_is_written(tmp_path):
    r = fit(net(), DataLoader(ring(), batch_size=64), DataLoader(ring(128, 1), batch_size=128), epochs=3, progress=False, device='cpu', log_dir=tmp_path/'logs')
    got = pd.read_csv(tmp_path/'logs'/'history.csv')
    assert list(got.columns) == list(r.history.columns) and len(got) == 3
    np.testing.assert_allclose(got.drop(columns='seconds').to_numpy(), r.history.drop(columns='seconds').to_numpy(), rtol=1e-12)
    assert not [p for p in (tmp_path/'logs').iterdir() if p.name.startswith('.')]   # no temporary file left behind

# ---------------------------------------------------------------- the data contract

class Kwargs(nn.Module):
    "Takes the contract's dict as keyword arguments and records what it was given."
    def __init__(self):
        super().__init__(); self.emb, self.lin, self.seen = nn.Embedding(3, 2), nn.Linear(2 + 2, 2), set()
    def forward(self, num=None, cat=None):
        self.seen |= {k for k, v in (('num', num), ('cat', cat)) if v is not None}
        return self.lin(torch.cat([num, self.emb(cat[:, 0])], 1))

def dict_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    num, cat = torch.randn(n, 2, generator=g), torch.randint(0, 3, (n, 1), generator=g)
    y = (num[:, 0] + 1.5 * (cat[:, 0] == 2) > 0.5).long()
    return [({'num': num[i], 'cat': cat[i]}, y[i]) for i in range(n)]

def test_dict_batches_are_passed_as_keyword_arguments():
    seed_everything(0)
    m = Kwargs()
    r = fit(m, DataLoader(dict_data(), batch_size=32, shuffle=True), DataLoader(dict_data(128, 1), batch_size=64), epochs=15, lr=3e-2, progress=False, device='cpu')
    assert m.seen == {'num', 'cat'} and r.metrics['accuracy'] > 0.8

def test_tuple_batches_are_passed_as_positional_arguments():
    class Two(nn.Module):
        def __init__(self): super().__init__(); self.a, self.b = nn.Linear(1, 2), nn.Linear(1, 2)
        def forward(self, x1, x2): return self.a(x1) + self.b(x2)
    x, y = ring().tensors
    data = [((x[i, :1], x[i, 1:]), y[i]) for i in range(len(y))]
    seed_everything(0)
    m = Two()
    before = flat(m)
    loss = train_epoch(m, DataLoader(data, batch_size=64), torch.optim.SGD(m.parameters(), lr=0.1), progress=False)
    assert np.isfinite(loss) and not torch.equal(before, flat(m))

class HFStyle(nn.Module):
    "Answers like a Hugging Face model: an object with `.logits` and, when given labels, `.loss`."
    def __init__(self):
        super().__init__(); self.lin = nn.Linear(2, 2)
    def forward(self, x, labels=None):
        logits = self.lin(x)
        loss = None if labels is None else 2 * nn.functional.cross_entropy(logits, labels)   # twice CE: visibly the model's own loss
        return SimpleNamespace(logits=logits, loss=loss)

def test_hf_style_output_uses_its_loss_and_logits():
    x, y = ring().tensors
    with_labels = [({'x': x[i], 'labels': y[i]}, y[i]) for i in range(len(y))]
    seed_everything(0)
    m = HFStyle()
    ce = nn.functional.cross_entropy(m.lin(x), y).item()
    loss = train_epoch(m, DataLoader(with_labels, batch_size=len(y)), torch.optim.SGD(m.parameters(), lr=0.0), progress=False)
    assert loss == pytest.approx(2 * ce, rel=1e-5)
    res = evaluate(m, DataLoader(TensorDataset(x, y), batch_size=128))
    assert res['loss'] == pytest.approx(ce, rel=1e-5) and res['proba'].shape == (len(y), 2)

def test_tables_become_the_contract_and_train():
    "The hub's loaders carry one encoder from the training rows to the others; `mlp_for`, `fit` and the baseline take them as they are."
    df = table()
    tr, va, te = split_rows(df, stratify='sick', seed=0)
    assert (len(tr), len(va), len(te)) == (180, 60, 60) and abs(tr.sick.mean() - te.sick.mean()) < 0.02
    train = data.DataLoader(tr, target='sick', batch_size=32, shuffle=True)
    valid = data.DataLoader(va, encoder=train.encoder, batch_size=128)
    enc = train.encoder
    assert (enc.numeric, enc.categorical, enc.cardinalities, enc.classes) == (['age', 'chol'], ['site'], [4], [False, True])
    X, y = next(iter(valid))
    assert set(X) == {'num', 'cat'} and X['num'].dtype == torch.float32 and X['cat'].dtype == torch.int64 and y.dtype == torch.int64
    gap = va.chol.isna().to_numpy()
    assert gap.any() and torch.equal(X['num'][gap, 1], torch.zeros(int(gap.sum())))    # a missing number is the training mean
    model = mlp_for(train, hidden=(16,))
    assert (model.n_num, model.cardinalities, model.layers[-1].out_features) == (2, (4,), 2)
    r = fit(model, train, valid, epochs=30, lr=1e-2, progress=False, device='cpu')
    assert r.metrics['roc_auc'] > 0.8
    base = sklearn_baseline(tr.drop(columns='sick'), tr.sick, te.drop(columns='sick'), te.sick)
    assert base['roc_auc'] > 0.8 and {k for k, v in base.items() if isinstance(v, float)} == {k for k, v in r.metrics.items() if isinstance(v, float)}

def test_mlp_for_reads_an_encoder_or_a_pass_over_the_data():
    df = table(60)
    enc = data.TableEncoder.fit(df, 'sick')
    ds = data.TableDataset(df, enc)
    shapes = lambda m: (m.n_num, m.cardinalities, m.layers[-1].out_features)
    assert shapes(mlp_for(enc)) == shapes(mlp_for(ds)) == shapes(mlp_for(data.DataLoader(df, encoder=enc))) == (2, (4,), 2)
    plain = torch.utils.data.DataLoader(ds, batch_size=7, collate_fn=data.collate)           # no encoder: one pass over the batches
    assert shapes(mlp_for(plain)) == (2, (4,), 2)
    assert shapes(mlp_for(data.TableEncoder.fit(df, 'age', task='regression'), hidden=(4,))) == (1, (4, 3), 1)   # chol; site and the boolean sick as categories
    assert mlp_for(enc, n_out=5).layers[-1].out_features == 5

def test_baseline_reads_the_table_as_the_hubs_encoder_does():
    df = table().assign(smoker=lambda d: d.age > 60)
    tr, _, te = split_rows(df, seed=0)
    X, Xt = tr.drop(columns='sick'), te.drop(columns='sick')
    base = sklearn_baseline(X, tr.sick, Xt, te.sick, kind='hgb')
    roles = {name: cols for name, _, cols in base['model'].named_steps['columntransformer'].transformers_}
    enc = data.TableEncoder.fit(tr, 'sick')
    assert roles == {'num': enc.numeric, 'cat': enc.categorical} == {'num': ['age', 'chol'], 'cat': ['site', 'smoker']}
    assert base['y_true'].tolist() == te.sick.astype(int).tolist() and base['proba'].shape == (len(te), 2) and base['roc_auc'] > 0.75
    forced = sklearn_baseline(X, tr.sick, Xt, te.sick, cat=['age'])['model'].named_steps['columntransformer'].transformers_
    assert forced[1][2] == ['age', 'site', 'smoker']                                       # named columns join the non-numeric ones
    with pytest.raises(InputError, match=r"the target 'sick' has values \['maybe'\] the encoder never saw"):
        sklearn_baseline(X, tr.sick, Xt, te.sick.where(te.age > 45, 'maybe'))
    with pytest.raises(InputError, match=r"the features \[.chol.\]: not in the table"): sklearn_baseline(X, tr.sick, Xt.drop(columns='chol'), te.sick)

def test_regression():
    df = table().assign(target=lambda d: d.age / 10 + (d.site == 'b'))
    tr, va, _ = split_rows(df.drop(columns='sick'), seed=0)
    train = data.DataLoader(tr, target='target', task='regression', batch_size=32, shuffle=True)
    valid = data.DataLoader(va, encoder=train.encoder, batch_size=128)
    model = mlp_for(train, hidden=(16,))
    assert train.dataset.y.dtype == torch.float32 and model.layers[-1].out_features == 1
    r = fit(model, train, valid, epochs=40, lr=1e-2, task='regression', monitor='r2', progress=False, device='cpu')
    assert r.best > 0.5 and {'mse', 'mae', 'r2'} <= set(r.metrics)
    base = sklearn_baseline(tr.drop(columns='target'), tr.target, va.drop(columns='target'), va.target, task='regression')
    assert base['r2'] > 0.999 and base['mse'] < 1e-3                                     # the target is linear in age and site

# ---------------------------------------------------------------- DP-SGD

def test_dp_sgd_spends_at_most_its_epsilon_and_gives_back_the_plain_model():
    df = table(400)
    train = data.DataLoader(df, target='sick', batch_size=64, shuffle=True)     # dict batches through Opacus's GradSampleModule
    seed_everything(0)
    model = mlp_for(train, hidden=(16,))
    r = fit(model, train, data.DataLoader(df, encoder=train.encoder, batch_size=400), epochs=4, lr=1e-2, progress=False, device='cpu', privacy=DPConfig(epsilon=2.0))
    assert 0.9 * 2.0 < r.epsilon <= 2.0
    assert r.history.epsilon.is_monotonic_increasing and r.history.epsilon.iloc[-1] == r.epsilon
    assert r.privacy['delta'] == pytest.approx(0.1 / 400) and r.privacy['noise_multiplier'] > 0
    assert r.model is model and type(r.model) is TabularMLP
    assert not any(hasattr(p, 'grad_sample') for p in model.parameters())
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())   # Opacus's hooks are gone
    card = json.loads(json.dumps(model_card(r, dataset='toy', view='columns')))
    assert card['privacy']['dp_sgd'] and card['privacy']['epsilon'] == pytest.approx(r.epsilon) and card['privacy']['max_grad_norm'] == 1.0

def test_dp_sgd_refuses_batch_norm_naming_the_layer():
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(InputError, match=r"layer '1' \(BatchNorm1d\).*GroupNorm.*ModuleValidator.fix"):
        fit(model, DataLoader(ring(), batch_size=64), epochs=1, progress=False, device='cpu', privacy=DPConfig(1.0))

@pytest.mark.parametrize('kw, msg', [({'epsilon': -1}, 'epsilon must be a positive number'), ({'epsilon': 0}, 'epsilon must be a positive'),
                                     ({'epsilon': 1, 'delta': 2}, 'delta must be in'), ({'epsilon': 1, 'max_grad_norm': 0}, 'max_grad_norm must be positive')])
def test_bad_privacy_budgets(kw, msg):
    with pytest.raises(InputError, match=msg): DPConfig(**kw)

# ---------------------------------------------------------------- bad input

def test_missing_target_and_bad_labels_are_refused():
    df = table()
    with pytest.raises(InputError, match=r"the target 'sick' is missing in \d+ rows"): data.DataLoader(df.assign(sick=df.sick.where(df.age > 40)), target='sick')
    with pytest.raises(InputError, match='too few'): split_rows(df.head(3))
    with pytest.raises(InputError, match=r"the column to stratify on \[.outcome.\]: not in the table"): split_rows(df, stratify='outcome')
    five = TensorDataset(torch.randn(40, 2), torch.arange(40) % 5)
    with pytest.raises(InputError, match='outputs 3 logits but the labels have at least 5 classes'):
        fit(nn.Linear(2, 3), DataLoader(five, batch_size=40), epochs=1, progress=False, device='cpu')
    real = TensorDataset(torch.randn(40, 2), torch.randn(40))
    with pytest.raises(InputError, match="floating-point numbers, a regression target"):
        fit(nn.Linear(2, 2), DataLoader(real, batch_size=8), epochs=1, progress=False, device='cpu')
    with pytest.raises(InputError, match='n_out=1'):
        fit(nn.Linear(2, 2), DataLoader(real, batch_size=8), epochs=1, task='regression', progress=False, device='cpu')
    with pytest.raises(InputError, match='pair'):
        train_epoch(nn.Linear(2, 2), [torch.randn(4, 2)], torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), progress=False)

# ---------------------------------------------------------------- membership inference

def test_exposed_members_by_hand():
    "Members score 5, 4, 3, 1; non-members 3.5, 2, 0, −1, −2."
    ms, ns = [5, 4, 3, 1], [3.5, 2, 0, -1, -2]
    assert exposure(ms, ns, folds=1) == {'threshold': 3.75, 'tpr': 0.5, 'fpr': 0.0, 'exposed': 2.0, 'folds': 1}  # flag 5, 4: 4 × (2/4 − 0/5)
    assert exposure(ms, ns, max_fpr=1, folds=1)['exposed'] == pytest.approx(4 * (1 - 0.4))                      # τ = 1
    assert exposure(ms, ns, threshold=3)['exposed'] == pytest.approx(4 * (0.75 - 0.2))                           # fixed τ
    assert exposure(ms, ns, max_fpr=0, folds=1)['exposed'] == 2.0
    assert exposure([0, 0, 0], [1, 2], folds=1)['exposed'] == 0.0 and exposure([1, 2], [1, 2], folds=1)['exposed'] == 0.0
    perfect = exposure(np.arange(100, 200), np.arange(100))               # cross-fitted: a clean separation is still found
    assert perfect['exposed'] >= 95 and perfect['folds'] == 2
    with pytest.raises(InputError, match='at least one member'): exposure([], [1])

def test_membership_attack_finds_an_overfit_models_members_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    noise = TensorDataset(torch.randn(128, 2, generator=g), torch.randint(0, 2, (128,), generator=g))
    ins, outs = Subset(noise, range(64)), Subset(noise, range(64, 128))
    r = fit(deep(), DataLoader(ins, batch_size=16, shuffle=True), epochs=150, lr=3e-3, progress=False, device='cpu')
    leak = membership_attack(r.model, ins, DataLoader(outs, batch_size=7))
    assert leak.auc > 0.75 and leak.advantage > 0.3 and leak.exposed > 5 and leak.P < 1
    assert (leak.n_members, leak.n_nonmembers) == (64, 64) and len(leak.fpr) == len(leak.tpr)
    halves = membership_attack(r.model, Subset(outs, range(32)), Subset(outs, range(32, 64)))
    assert abs(halves.auc - 0.5) < 0.15 and halves.exposed < leak.exposed
    yeom = membership_attack(r.model, ins, outs, threshold='mean_loss')
    assert yeom.folds == 1 and yeom.threshold == pytest.approx(leak.member_scores.mean())           # −(mean training loss)
    card = json.loads(json.dumps(model_card(r, attack=leak)))
    assert card['membership_attack']['auc'] == pytest.approx(leak.auc, abs=1e-6) and not card['privacy']['dp_sgd']

def test_shadow_attack_runs_and_is_refused_without_its_parts():
    g = torch.Generator().manual_seed(1)
    noise = TensorDataset(torch.randn(192, 2, generator=g), torch.randint(0, 2, (192,), generator=g))
    ins, outs, attacker = Subset(noise, range(64)), Subset(noise, range(64, 128)), Subset(noise, range(128, 192))
    r = fit(deep(), DataLoader(ins, batch_size=16, shuffle=True), epochs=100, lr=3e-3, progress=False, device='cpu')
    s = membership_attack(r.model, ins, outs, method='shadow', factory=deep, attacker_data=attacker, shadows=2,
                          shadow_fit={'epochs': 100, 'lr': 3e-3, 'batch_size': 16}, device='cpu')
    assert s.method == 'shadow' and s.auc > 0.6 and 0 <= s.member_scores.min() and s.member_scores.max() <= 1
    with pytest.raises(InputError, match='needs factory='): membership_attack(r.model, ins, outs, method='shadow')
    with pytest.raises(InputError, match="method must be 'loss' or 'shadow'"): membership_attack(r.model, ins, outs, method='oracle')

# ---------------------------------------------------------------- the hub's own loaders

def test_the_hubs_dataloader_trains_with_and_without_dp():
    "`leptonhub.platform.data.DataLoader` gives the contract's batches: `fit`, DP-SGD, `mlp_for` and the attack take them as they are."
    df = table(300).assign(sick=lambda d: d.sick.astype(int))
    tr, va, _ = split_rows(df, stratify='sick', seed=0)
    train = data.DataLoader(tr, target='sick', categorical=['site'], batch_size=32, shuffle=True, seed=0)
    valid = data.DataLoader(va, encoder=train.encoder, batch_size=128)
    model = mlp_for(train, hidden=(16,))
    assert (model.n_num, model.cardinalities) == (2, (4,))
    r = fit(model, train, valid, epochs=10, lr=1e-2, progress=False, device='cpu')
    assert r.metrics['roc_auc'] > 0.8
    dp = fit(mlp_for(train, hidden=(16,)), train, valid, epochs=2, lr=1e-2, progress=False, device='cpu', privacy=DPConfig(3.0))
    assert 0 < dp.epsilon <= 3.0
    assert membership_attack(r.model, train, valid).n_members == len(tr)
    on_datasets = membership_attack(r.model, train.dataset, valid.dataset)                 # the datasets alone are collated as the loaders would
    assert (on_datasets.n_members, on_datasets.n_nonmembers) == (len(tr), len(va)) and on_datasets.auc == membership_attack(r.model, train, valid).auc
    shadow = membership_attack(r.model, train, valid, method='shadow', factory=lambda: mlp_for(train, hidden=(16,)), attacker_data=valid,
                               shadows=1, shadow_fit={'epochs': 2}, device='cpu')
    assert 0 <= shadow.auc <= 1
