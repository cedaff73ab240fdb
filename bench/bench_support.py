"""Benchmark `leptonhub.apps.support` on CLINC150 against the published results of Larson et al. (2019).

Run: `.venv/bin/python bench/bench_support.py [--data /work/shared/data/clinc150] [--methods finetune,embed,tfidf] [--epochs 3]`.
The data is the "full" CLINC150 split as CSV (`train.csv`, `val.csv`, `test.csv`, columns text,intent,domain; out-of-scope
questions have intent `oos`): 15,000 + 100 training, 3,000 + 100 validation and 4,500 + 1,000 test questions. Each method
trains a `SupportBot` on the training questions (the out-of-scope ones as a class of their own, the paper's "oos-train"
setting), chooses its hand-over threshold on the validation questions with `choose_threshold` (at most `--max-loss` in-scope
accuracy lost), and is scored on the test questions: in-scope accuracy, out-of-scope recall, accuracy and macro-F1 over all
test questions (the out-of-scope label as one more class), with and without the threshold, and the seconds taken. TF-IDF is
the baseline, run in the same process. Results go to `bench/results/support.json`; the run fails (exit 1) if no neural method
reaches both targets.
"""
from __future__ import annotations
import argparse, os, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import finish
from leptonhub.apps.support import SupportBot, decide, support_metrics, threshold_curve
from leptonhub.apps.text import default_device

DATA = Path(os.environ.get('CLINC150', '/work/shared/data/clinc150'))
OOS = 'oos'
TARGET = {'in_scope_accuracy': 0.969, 'oos_recall': 0.60}
PUBLISHED = {'BERT (Larson et al. 2019, oos-train)': {'in_scope_accuracy': 0.969, 'oos_recall': 0.403},
             'MLP (Larson et al. 2019, oos-train)': {'in_scope_accuracy': 0.935, 'oos_recall': 0.474}}

def load(data:Path) -> dict:
    "The three splits as DataFrames."
    return {s: pd.read_csv(data/f'{s}.csv', dtype=str, keep_default_na=False) for s in ('train', 'val', 'test')}

def run(method:str, d:dict, args) -> dict:
    "Train one `SupportBot`, choose its threshold on the validation split, score it on the test split."
    kw = {'progress': True, 'device': args.device} if method != 'tfidf' else {}
    if method == 'finetune': kw |= {'epochs': args.epochs, 'train_layers': args.train_layers}
    t0, c0 = time.perf_counter(), time.process_time()
    bot = SupportBot(method, oos_label=OOS, max_loss=args.max_loss, retrieval=False, seed=args.seed, **kw)
    bot.fit(d['train'].text, d['train'].intent, d['val'].text, d['val'].intent)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    proba = bot.classifier_.predict_proba(d['test'].text)
    pred, _ = decide(proba, bot.classes_, bot.threshold_, OOS)
    predict_s = time.perf_counter() - t1
    y = d['test'].intent.to_numpy(dtype=object)
    at0 = support_metrics(y, decide(proba, bot.classes_, 0.0, OOS)[0], OOS)
    curve = threshold_curve(proba, bot.classes_, y, OOS)
    m = support_metrics(y, pred, OOS)
    out = {'method': method, 'threshold': bot.threshold_, **{k: m[k] for k in ('accuracy', 'in_scope_accuracy', 'oos_recall', 'oos_precision', 'macro_f1')},
           'no_threshold': {k: at0[k] for k in ('accuracy', 'in_scope_accuracy', 'oos_recall', 'macro_f1')},
           'seconds': fit_s + predict_s, 'fit_seconds': fit_s, 'predict_seconds': predict_s, 'fit_cpu_seconds': fit_cpu,
           'train_loss_per_epoch': [round(h, 4) for h in bot.classifier_.history_],
           'meets_targets': bool(m['in_scope_accuracy'] >= TARGET['in_scope_accuracy'] and m['oos_recall'] >= TARGET['oos_recall']),
           'valid_curve': bot.curve_.round(4).to_dict('list'), 'test_curve': curve.round(4).to_dict('list')}
    print(f"{method:>8}: in-scope {m['in_scope_accuracy']:.2%}, OOS recall {m['oos_recall']:.2%}, accuracy {m['accuracy']:.2%}, "
          f"macro-F1 {m['macro_f1']:.3f}, τ={bot.threshold_:.2f}; at τ=0: {at0['in_scope_accuracy']:.2%} / {at0['oos_recall']:.2%}; "
          f"{fit_s:.0f} s to train ({fit_cpu:.0f} s of CPU), {predict_s:.0f} s to predict", flush=True)
    return out

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', type=Path, default=DATA, help='folder with train.csv, val.csv, test.csv (default: %(default)s)')
    p.add_argument('--methods', default='finetune,embed,tfidf', help='comma-separated TextClassifier methods (default: %(default)s)')
    p.add_argument('--epochs', type=int, default=3, help='fine-tuning epochs (default: %(default)s)')
    p.add_argument('--max-loss', type=float, default=0.01, help='in-scope accuracy the threshold may cost on validation (default: %(default)s)')
    p.add_argument('--device', default=None, help='cuda or cpu (default: cuda if available)')
    p.add_argument('--train-layers', type=int, default=None, help='fine-tune only the top this many of the six layers (default: all)')
    p.add_argument('--threads', type=int, default=None, help='torch and BLAS threads (default: torch\'s own; 1 is fastest on a shared machine)')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits
        torch.set_num_threads(args.threads); threadpool_limits(args.threads)
    d = load(args.data)
    print(f"CLINC150 from {args.data}: {', '.join(f'{s} {len(v):,}' for s, v in d.items())}; device {args.device or default_device()}, "
          f'{torch.get_num_threads()} torch threads', flush=True)
    results = [run(m.strip(), d, args) for m in args.methods.split(',') if m.strip()]
    report = {'data': str(args.data), 'rows': {s: len(v) for s, v in d.items()}, 'oos_label': OOS, 'epochs': args.epochs, 'train_layers': args.train_layers,
              'max_loss': args.max_loss, 'seed': args.seed, 'device': args.device or default_device(),
              'machine': {'cpus': os.cpu_count(), 'torch_threads': torch.get_num_threads(), 'python': platform.python_version(),
                          'torch': torch.__version__, 'load_average': os.getloadavg()},
              'targets': TARGET, 'published': PUBLISHED, 'results': results}
    neural = [r for r in results if r['method'] != 'tfidf']
    problems = [] if any(r['meets_targets'] for r in neural) else \
        [f"no neural method reaches in-scope accuracy ≥ {TARGET['in_scope_accuracy']:.1%} with OOS recall ≥ {TARGET['oos_recall']:.0%}: " +
         '; '.join(f"{r['method']} {r['in_scope_accuracy']:.2%} / {r['oos_recall']:.2%}" for r in neural)]
    return finish('support', report, problems)

if __name__ == '__main__': sys.exit(main())
