"""Benchmark `leptonhub.apps.sentiment` on the full Twitter Financial News data: our text classifier and a TF-IDF baseline, sentiment and topic.

Run: `.venv/bin/python bench/bench_sentiment.py [--data /work/shared/data/twitter_financial_news] [--tasks sentiment topic]
[--method finetune+tfidf] [--epochs 4] [--device cpu] [--options '{"train_layers": 2}']`. For each task it trains on `<task>_train.csv` and scores on `<task>_valid.csv`
(the datasets' validation splits, on which the model cards report their accuracy), first with `TextClassifier(--method)`
(by default MiniLM fine-tuned and TF-IDF, their probabilities averaged; each member's own accuracy is recorded too), then with `TextClassifier('tfidf')`, the baseline; both
through `leptonhub.apps.sentiment.evaluate`, in this one process. It records accuracy, macro-F1 and seconds (training plus
prediction) of each, next to the published figures of a fine-tuned FinBERT-tone, and saves the results after every run to
`bench/results/sentiment.json` (`--name` for another file). Target: sentiment accuracy ≥ 0.885; the run exits non-zero below it.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from pathlib import Path

PUBLISHED = {'sentiment': 0.884, 'topic': 0.911} # accuracy of the fine-tuned FinBERT-tone on the validation splits (model cards)
TARGET = {'sentiment': 0.885}

def main(data:Path, tasks:list[str], method:str, epochs:int, device:str|None, name:str, seed:int, options:dict|None=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pandas as pd, torch
    from results_io import finish, save
    from leptonhub.apps.sentiment import evaluate
    from leptonhub.apps.text import default_device, resolve_method
    ours = resolve_method(method)
    tuned, options = 'finetune' in ours.split('+'), options or {}
    res = {'data': str(data), 'method': method, 'resolved_method': ours, 'epochs': epochs if tuned else None, 'seed': seed, 'options': options,
           'device': device or default_device(), 'torch_threads': torch.get_num_threads(), 'cpus': os.cpu_count(),
           'load_average_at_start': os.getloadavg(), 'python': platform.python_version(), 'torch': torch.__version__,
           'published': {'model': 'FinBERT-tone fine-tuned (model cards of the zeroshot Twitter Financial News datasets)', 'accuracy': PUBLISHED}}
    problems = []
    for task in tasks:
        train, valid = (pd.read_csv(data/f'{task}_{s}.csv') for s in ('train', 'valid'))
        res[task] = {'n_train': len(train), 'n_test': len(valid), 'published_accuracy': PUBLISHED[task]}
        mine = {'epochs': epochs, 'device': device, 'seed': seed, 'progress': False, **options} if tuned else {'device': device, 'seed': seed, **options}
        for label, m, kw in ((ours, ours, mine),
                             ('tfidf', 'tfidf', {'seed': seed})):
            if label in res[task]: continue
            print(f'{task}: {label} on {len(train):,} tweets …', flush=True)
            r = evaluate(train, valid, 'text', 'label', m, **kw)
            res[task][label] = {k: r[k] for k in ('accuracy', 'macro_f1', 'seconds', 'fit_seconds', 'predict_seconds', 'f1', 'members')}
            print(f"{task}: {label} accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}, {r['seconds']:.0f} s "
                  f"(published {PUBLISHED[task]})", flush=True)
            save(name, res)
        if task in TARGET and res[task][ours]['accuracy'] < TARGET[task]:
            problems.append(f"{task} accuracy {res[task][ours]['accuracy']:.4f} < target {TARGET[task]}")
    res['finished'] = time.strftime('%Y-%m-%dT%H:%M:%S')
    return finish(name, res, problems)

def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', type=Path, default=Path('/work/shared/data/twitter_financial_news'), help='folder with <task>_train.csv and <task>_valid.csv')
    p.add_argument('--tasks', nargs='+', default=['sentiment', 'topic'], choices=['sentiment', 'topic'])
    p.add_argument('--method', default='finetune+tfidf', help="our model: auto, finetune, embed, tfidf or several joined with + (see TextClassifier)")
    p.add_argument('--epochs', type=int, default=4, help='fine-tuning epochs')
    p.add_argument('--device', default=None, help='cuda or cpu; default: CUDA where available')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--options', type=json.loads, default={}, help='more TextClassifier settings for our model, as JSON: \'{"train_layers": 2}\'')
    p.add_argument('--name', default='sentiment', help='results file: bench/results/<name>.json')
    return p.parse_args(argv)

if __name__ == '__main__':
    a = parse()
    sys.exit(main(a.data, a.tasks, a.method, a.epochs, a.device, a.name, a.seed, a.options))
