"""Benchmark `leptonhub.privacy.pii.find_pii` against Microsoft Presidio's rule-based recognisers on one labelled corpus.

Run: `.venv/bin/python bench/bench_pii.py [--docs 4000] [--repeat 3] [--presidio-python /tmp/presidio-venv/bin/python]`.
The corpus is `synthetic_corpus(--docs, --seed)`: English and Chinese texts with made-up, checksum-valid PII and near misses,
and their gold spans. leptonhub runs in this process; Presidio runs in a subprocess with its own interpreter (a separate
virtual environment, so it never changes the project's), fed the same texts; both are timed over the whole corpus, one
`analyze` / `find_pii` call per text, best of `--repeat` rounds, and both are scored against the same gold spans.
Results go to `bench/results/pii.json`. If Presidio cannot be run, leptonhub is reported alone and the speed target is
not checked.
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

SEED = 20260501
TARGET_ACCURACY = 0.99 # leptonhub's precision and recall, for every type
TARGET_SPEED = 5.0 # leptonhub docs/s over Presidio docs/s
PRESIDIO_PYTHON = os.environ.get('PRESIDIO_PYTHON', '/tmp/presidio-venv/bin/python')
TO_OURS = {'EMAIL_ADDRESS': 'EMAIL', 'PHONE_NUMBER': 'PHONE', 'CN_ID': 'CN_ID', 'CREDIT_CARD': 'CARD', 'IBAN_CODE': 'IBAN',
           'IP_ADDRESS': 'IP', 'DATE_TIME': 'DOB'} # Presidio entity → our type (Presidio has no date of birth: its dates stand in)
REGIONS = ('CN', 'US', 'GB', 'DE', 'FR', 'JP', 'SG', 'AU') # the phone regions the corpus uses, as many as Presidio's default

# ---------------------------------------------------------------- the baseline, run inside Presidio's interpreter

def presidio_worker(src:str, dst:str, repeat:int) -> None:
    "Read texts from `src`, time Presidio over them `repeat` times, write spans and times to `dst`."
    import logging, tldextract
    from importlib.metadata import version
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())   # offline: the bundled public-suffix list, no download
    logging.getLogger('presidio-analyzer').setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, DateRecognizer, EmailRecognizer, IbanRecognizer,
                                                          IpRecognizer, PhoneRecognizer)
    nlp = NlpEngineProvider(nlp_configuration={'nlp_engine_name': 'no_op', 'models': [{'lang_code': 'en', 'model_name': 'no_op'}]}).create_engine()
    cn_id = PatternRecognizer('CN_ID', patterns=[Pattern('cn_id', r'\b[1-8]\d{16}[\dXx]\b', 0.5)])   # Presidio has none; written its way
    registry = RecognizerRegistry(recognizers=[EmailRecognizer(), PhoneRecognizer(supported_regions=REGIONS), CreditCardRecognizer(),
                                               IbanRecognizer(), IpRecognizer(), DateRecognizer(), cn_id], supported_languages=['en'])
    engine = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=['en'])
    texts, entities = json.loads(Path(src).read_text()), list(TO_OURS)
    engine.analyze(text=texts[0], language='en', entities=entities)              # warm-up: loads and compiles everything
    times = []
    for r in range(repeat):
        t0 = time.perf_counter()
        found = [engine.analyze(text=t, language='en', entities=entities) for t in texts]
        times.append(time.perf_counter() - t0)
        print(f'presidio round {r + 1}/{repeat}: {times[-1]:.1f} s', file=sys.stderr, flush=True)
    spans = [[(TO_OURS[x.entity_type], x.start, x.end) for x in f] for f in found]
    Path(dst).write_text(json.dumps({'times': times, 'spans': spans, 'version': version('presidio-analyzer'), 'python': platform.python_version()}))

def run_presidio(texts:list[str], repeat:int, python:str) -> dict:
    "Presidio's spans and times on `texts`, from a subprocess; or {'missing': why}."
    if not Path(python).exists(): return {'missing': f'no Presidio interpreter at {python} (set --presidio-python or $PRESIDIO_PYTHON)'}
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d)/'texts.json', Path(d)/'out.json'
        src.write_text(json.dumps(texts, ensure_ascii=False))
        p = subprocess.run([python, __file__, '--worker', str(src), str(dst), '--repeat', str(repeat)], stderr=subprocess.PIPE, text=True)
        if p.returncode or not dst.exists(): return {'missing': f'Presidio failed (exit {p.returncode}): {p.stderr.strip().splitlines()[-1:] or ""}'}
        return json.loads(dst.read_text())

# ---------------------------------------------------------------- leptonhub, and scoring

def run_ours(texts:list[str], repeat:int) -> dict:
    "leptonhub's spans and times on `texts`."
    from leptonhub.privacy.pii import find_pii
    find_pii(texts[0])
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        found = [find_pii(t) for t in texts]
        times.append(time.perf_counter() - t0)
    return {'times': times, 'spans': [[(s.type, s.start, s.end) for s in f] for f in found]}

def as_spans(found:list[list]) -> list:
    "(type, start, end) triples as `Span`s, for `score`."
    from leptonhub.privacy.pii import Span
    return [[Span(t, s, e, '') for t, s, e in f] for f in found]

def lenient(found:list[list], gold:list) -> dict:
    "Per type, precision and recall where a span counts if it overlaps a span of the same type on the other side."
    from leptonhub.privacy.pii import TYPES
    out = {}
    for ty in TYPES:
        g = [(i, s.start, s.end) for i, ss in enumerate(gold) for s in ss if s.type == ty]
        f = {(i, s, e) for i, ss in enumerate(found) for t, s, e in ss if t == ty}
        hit = lambda a, bs: any(a[0] == b[0] and a[1] < b[2] and b[1] < a[2] for b in bs)
        out[ty] = {'precision': sum(hit(x, g) for x in f) / len(f) if f else 1.0, 'recall': sum(hit(x, f) for x in g) / len(g) if g else 1.0}
    return out

def scored(found:list[list], gold:list) -> dict:
    "Exact-span scores per type (from `score`) and lenient ones."
    from leptonhub.privacy.pii import score
    q = score(as_spans(found), gold)
    return {'exact': {t: {k: float(v) if k in ('precision', 'recall') else int(v) for k, v in row.items()} for t, row in q.iterrows()},
            'lenient': lenient(found, gold)}

# ---------------------------------------------------------------- report

def table(res:dict) -> str:
    "Per-type accuracy of both, then speed."
    ours, base = res['leptonhub'], res.get('presidio')
    rows = [('type', 'gold', 'ours P', 'ours R', 'Presidio P', 'Presidio R', 'Presidio P~', 'Presidio R~')]
    for t, q in ours['scores']['exact'].items():
        b, bl = (base['scores']['exact'][t], base['scores']['lenient'][t]) if base else ({}, {})
        f = lambda d, k: f'{d[k]:.4f}' if k in d else '-'
        rows.append((t, str(q['gold']), f(q, 'precision'), f(q, 'recall'), f(b, 'precision'), f(b, 'recall'), f(bl, 'precision'), f(bl, 'recall')))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.append('(P, R: exact spans; P~, R~: a span counts when it overlaps one of the same type)')
    lines.append(f"leptonhub: {ours['docs_per_s']:,.0f} docs/s (best of {res['repeat']}: {min(ours['times']):.3f} s for {res['docs']:,} texts)")
    if base:
        lines.append(f"Presidio {base['version']}: {base['docs_per_s']:,.0f} docs/s (best of {res['presidio_repeat']}: {min(base['times']):.2f} s)")
        lines.append(f"speed leptonhub / Presidio: {res['speed_ratio']:.1f}x (target >= {TARGET_SPEED:g}x): {'meets' if res['speed_ratio'] >= TARGET_SPEED else 'MISSES'} it")
    else: lines.append(f"Presidio: baseline missing ({res['presidio_missing']}); speed not compared")
    lines.append(f"leptonhub precision and recall >= {TARGET_ACCURACY:g} for every type: {'meets' if res['accuracy_ok'] else 'MISSES'} it "
                 f"(lowest {res['lowest_accuracy']:.4f})")
    return '\n'.join(lines)

def main(docs:int, repeat:int, presidio_repeat:int, seed:int, python:str) -> int:
    "Measure both, print, save; non-zero exit if a target is missed."
    from results_io import finish
    from leptonhub.privacy.pii import synthetic_corpus
    texts, gold = synthetic_corpus(docs, seed)
    print(f'{docs:,} texts ({sum(map(len, texts)):,} characters, {sum(map(len, gold)):,} PII values), seed {seed}', flush=True)
    ours = run_ours(texts, repeat)
    ours |= {'docs_per_s': docs / min(ours['times']), 'scores': scored(ours.pop('spans'), gold)}
    res = {'docs': docs, 'seed': seed, 'repeat': repeat, 'presidio_repeat': presidio_repeat, 'leptonhub': ours}
    base = run_presidio(texts, presidio_repeat, python)
    if 'missing' in base: res['presidio_missing'] = base['missing']
    else:
        base |= {'docs_per_s': docs / min(base['times']), 'scores': scored(base.pop('spans'), gold)}
        res |= {'presidio': base, 'speed_ratio': ours['docs_per_s'] / base['docs_per_s']}
    low = min(min(q['precision'], q['recall']) for q in ours['scores']['exact'].values())
    res |= {'lowest_accuracy': low, 'accuracy_ok': low >= TARGET_ACCURACY, 'target_accuracy': TARGET_ACCURACY, 'target_speed': TARGET_SPEED,
            'python': platform.python_version(), 'machine': platform.machine(), 'cpus': os.cpu_count()}
    print(table(res))
    problems = [] if res['accuracy_ok'] else [f'leptonhub precision or recall {low:.4f} < {TARGET_ACCURACY}']
    if 'speed_ratio' in res and res['speed_ratio'] < TARGET_SPEED: problems.append(f"speed ratio {res['speed_ratio']:.2f} < {TARGET_SPEED}")
    return finish('pii', res, problems)

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--docs', type=int, default=4000, help='texts in the corpus (default 4000)')
    p.add_argument('--repeat', type=int, default=5, help="rounds for leptonhub; the best counts (default 5)")
    p.add_argument('--presidio-repeat', type=int, default=2, help="rounds for Presidio; the best counts (default 2)")
    p.add_argument('--seed', type=int, default=SEED, help='corpus seed')
    p.add_argument('--presidio-python', default=PRESIDIO_PYTHON, help='interpreter with presidio-analyzer installed (default $PRESIDIO_PYTHON or /tmp/presidio-venv/bin/python)')
    p.add_argument('--worker', nargs=2, metavar=('TEXTS', 'OUT'), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.docs < 1 or a.repeat < 1 or a.presidio_repeat < 1: p.error('--docs, --repeat and --presidio-repeat must be at least 1')
    return a

if __name__ == '__main__':
    args = parse()
    if args.worker: presidio_worker(*args.worker, args.repeat)
    else: sys.exit(main(args.docs, args.repeat, args.presidio_repeat, args.seed, args.presidio_python))
