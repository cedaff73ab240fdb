"""Benchmark leptonhub's k-anonymizer against the classic Python Mondrian (qiyuangong/Mondrian, strict) on UCI Adult.

Run: `.venv/bin/python bench/bench_anonymize.py [--k 10] [--repeat 3] [--classic /tmp/mondrian_classic] [--scale-rows 1000000]`.
The classic is imported at run time from an extracted copy of github.com/qiyuangong/Mondrian (`--classic`); none of its
code is in this repository. Both run in this one process on the same 30,162 Adult rows, interleaved round by round (best
of `--repeat` each). Every method's classes are checked to hold at least k rows, and NCP is computed by both the classic's
formula and leptonhub's `ncp()` on every method's classes. A scale test then times leptonhub alone on `--scale-rows`
resampled, jittered rows. Results go to `bench/results/anonymize.json`.
"""
from __future__ import annotations
from results_io import finish
import argparse, builtins, importlib, json, os, platform, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd

ADULT = Path(__file__).resolve().parents[2]/'shared'/'data'/'adult'/'raw'/'adult.data'  # ../shared beside the checkout
ADULT_COLS = ['age', 'workclass', 'fnlwgt', 'education', 'education_num', 'marital_status', 'occupation', 'relationship',
              'race', 'sex', 'capital_gain', 'capital_loss', 'hours_per_week', 'native_country', 'income']
QI = ['age', 'workclass', 'education_num', 'marital_status', 'occupation', 'race', 'sex', 'native_country'] # the classic's QI_INDEX order
NUMERIC = ('age', 'education_num')
SA = 'income'
METHODS = ('mondrian', 'mondrian-strict', 'greedy')
SEED = 20260501
TIME_TARGET = 0.25 # leptonhub time / classic time on Adult
NCP_TARGET = 9.0 # leptonhub NCP, percent
SCALE_TARGET = 15.0 # seconds per leptonhub method at --scale-rows
JITTER = {'age': 2, 'education_num': 1} # +- integer noise at scale, clipped to Adult's domain
RESAMPLE_P = 0.05 # chance a categorical value is redrawn from its marginal at scale

# ---------------------------------------------------------------- the data

def read_adult(path:Path=ADULT) -> pd.DataFrame:
    "Adult rows as the classic's reader keeps them: no blank lines, no line with a '?', every space removed."
    rows = [l.replace(' ', '').split(',') for l in (l.strip() for l in open(path)) if l and '?' not in l]
    df = pd.DataFrame(rows, columns=ADULT_COLS)[QI + [SA]]
    for c in NUMERIC: df[c] = df[c].astype('int64')
    return df

def classic_codes(df:pd.DataFrame) -> np.ndarray:
    "QI values as the classic orders them: numbers as they are, categories numbered 0, 1, ... by first appearance."
    return np.column_stack([df[c].to_numpy('int64') if c in NUMERIC else pd.factorize(df[c], sort=False)[0] for c in QI])

def classic_rows(df:pd.DataFrame, codes:np.ndarray) -> list[list]:
    "Fresh input rows for the classic: the 8 coded QIs, income, then the row index (a tag, not a QI)."
    return [list(q) + [s, i] for i, (q, s) in enumerate(zip(codes.tolist(), df[SA].tolist()))]

def resample(df:pd.DataFrame, n:int, seed:int=SEED) -> pd.DataFrame:
    "`n` rows drawn from `df` with replacement; numbers jittered within the domain, categories sometimes redrawn from the marginal."
    rng = np.random.default_rng(seed)
    out = df.iloc[rng.integers(0, len(df), n)].reset_index(drop=True)
    for c in QI:
        if c in NUMERIC:
            j = JITTER[c]
            out[c] = np.clip(out[c].to_numpy() + rng.integers(-j, j + 1, n), df[c].min(), df[c].max())
        else:
            freq = df[c].value_counts(normalize=True)
            redraw = rng.random(n) < RESAMPLE_P
            out.loc[redraw, c] = rng.choice(freq.index.to_numpy(), size=int(redraw.sum()), p=freq.to_numpy())
    return out

# ---------------------------------------------------------------- information loss and class checks

def spans(values:np.ndarray, classes:np.ndarray, how:str) -> np.ndarray:
    "Per row, its class's max - min (`how='range'`) or distinct count - 1 (`how='distinct'`) of `values`; suppressed rows get NaN."
    kept = classes >= 0
    g = pd.Series(values[kept]).groupby(classes[kept])
    s = (g.transform('max') - g.transform('min')) if how == 'range' else g.transform('nunique') - 1
    out = np.full(len(values), np.nan)
    out[kept] = s.to_numpy(float)
    return out

def ncp_classic(codes:np.ndarray, classes:np.ndarray) -> float:
    "NCP in percent by the classic's formula: span in its value order / domain range, per row and QI; suppressed = 1."
    w = [spans(codes[:, j], classes, 'range') / np.ptp(codes[:, j]) for j in range(codes.shape[1])]
    return 100 * float(np.nan_to_num(np.column_stack(w), nan=1.0).mean())

def ncp_reference(df:pd.DataFrame, classes:np.ndarray) -> float:
    "leptonhub's NCP definition in [0, 1], computed here to cross-check `ncp()`: ranges for numbers, distinct counts for categories."
    w = []
    for c in QI:
        if c in NUMERIC: w.append(spans(df[c].to_numpy(float), classes, 'range') / np.ptp(df[c].to_numpy(float)))
        else: w.append(spans(pd.factorize(df[c])[0], classes, 'distinct') / (df[c].nunique() - 1))
    return float(np.nan_to_num(np.column_stack(w), nan=1.0).mean())

def class_stats(classes:np.ndarray) -> dict:
    "Number of classes, smallest and largest class, and suppressed rows."
    sizes = np.unique(classes[classes >= 0], return_counts=True)[1]
    return {'classes': int(len(sizes)), 'min_class': int(sizes.min()) if len(sizes) else 0,
            'max_class': int(sizes.max()) if len(sizes) else 0, 'suppressed': int((classes < 0).sum())}

# ---------------------------------------------------------------- the classic Mondrian (imported from --classic at run time)

def load_classic(path:Path):
    "Import the classic's `mondrian` module and Adult reader from `path`, or return None (with a message) if it is not there."
    if not (path/'mondrian.py').is_file():
        print(f'classic: {path}/mondrian.py not found: the classic column is SKIPPED (extract github.com/qiyuangong/Mondrian '
              f'there, or pass --classic PATH)', flush=True)
        return None
    sys.path.insert(0, str(path))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SyntaxWarning) # its `low is not ''`
        mod, reader = importlib.import_module('mondrian'), importlib.import_module('utils.read_adult_data')
    if not Path(mod.__file__).resolve().is_relative_to(path.resolve()): raise ImportError(f'imported {mod.__file__}, not the classic in {path}')
    return mod, reader

def classic_reader_rows(reader, path:Path=ADULT) -> list[list]:
    "Rows from the classic's own `read_data()`, pointed at `path` (its `open(..., 'rU')` fails on Python >= 3.11, so 'U' is dropped)."
    reader.open = lambda _name, mode='r': builtins.open(path, mode.replace('U', ''))
    try: return reader.read_data()[0]
    finally: del reader.open

def classic_classes(mod, result:list, n:int) -> tuple[np.ndarray, list[str]]:
    "Class id per input row from the classic's partitions (via the row-index tag), checked against its generalized output."
    classes, problems = np.full(n, -1), []
    for cid, part in enumerate(mod.RESULT): classes[[r[-1] for r in part.member]] = cid
    if (classes < 0).any(): problems.append(f'classic: {(classes < 0).sum()} input rows are in no partition')
    tuples = {}
    by_output = np.full(n, -1)
    for r in result: by_output[r[-1]] = tuples.setdefault(tuple(r[:len(QI)]), len(tuples))
    if len(result) != n or len(tuples) != len(mod.RESULT) or not same_partition(classes, by_output):
        problems.append('classic: the partitions and the groups of identical generalized QI tuples in its output differ')
    return classes, problems

def same_partition(a:np.ndarray, b:np.ndarray) -> bool:
    "Whether two class-id arrays group the rows identically (ids may differ)."
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))

def run_classic(mod, df:pd.DataFrame, codes:np.ndarray, k:int) -> dict:
    "One strict `mondrian(rows, k, relax=False)` call on fresh rows, timed whole; its NCP, own time and classes."
    rows = classic_rows(df, codes) # it overwrites the QIs of its input rows, so every round gets fresh ones
    t0 = time.perf_counter()
    result, (ncp, rtime) = mod.mondrian(rows, k, False, len(QI))
    wall = time.perf_counter() - t0
    classes, problems = classic_classes(mod, result, len(df))
    return {'seconds': wall, 'own_seconds': rtime, 'reported_ncp_pct': ncp, 'classes_arr': classes, 'problems': problems,
            'example': result[0][:len(QI)]}

# ---------------------------------------------------------------- leptonhub

def load_leptonhub() -> tuple:
    "leptonhub's `anonymize` and `ncp` (each None, with a message, if it is not there yet)."
    found = []
    for name in ('anonymize', 'ncp'):
        try: found.append(getattr(importlib.import_module('leptonhub.privacy.anonymize'), name))
        except (ImportError, AttributeError) as e:
            print(f'leptonhub: no leptonhub.privacy.anonymize.{name} ({type(e).__name__}: {e}): its columns are SKIPPED', flush=True)
            found.append(None)
    return tuple(found)

def ncp_value(ncp_fn, df:pd.DataFrame, classes:np.ndarray) -> float:
    "leptonhub's `ncp(df, qi, classes)` as one number in [0, 1] (it may return `(overall, per_attribute)`)."
    r = ncp_fn(df, QI, classes)
    return float(r[0] if isinstance(r, tuple) else r)

def run_leptonhub(anonymize, df:pd.DataFrame, k:int, method:str) -> dict:
    "One `anonymize(df, qi, k, method)` call, timed whole; its classes, NCP and own time."
    t0 = time.perf_counter()
    res = anonymize(df, qi=QI, k=k, method=method)
    wall = time.perf_counter() - t0
    classes = np.asarray(res.classes)
    problems = [f'leptonhub {method}: {what}' for bad, what in (
        (classes.shape != (len(df),), f'classes has shape {classes.shape}, not ({len(df)},)'),
        (len(res.data) != len(df), f'data has {len(res.data)} rows, not {len(df)}'),
        (int(res.suppressed) != int((classes < 0).sum()), f'suppressed = {res.suppressed} but {(classes < 0).sum()} classes are -1')) if bad]
    return {'seconds': wall, 'own_seconds': float(res.seconds), 'reported_ncp_pct': 100 * float(res.ncp), 'classes_arr': classes,
            'ncp_by_attribute': {c: float(v) for c, v in dict(res.ncp_by_attribute).items()}, 'problems': problems,
            'example': [str(v) for v in res.data[QI].iloc[0].tolist()]}

# ---------------------------------------------------------------- measuring

def best_of(rounds:list[dict]) -> dict:
    "The fastest round's record, with every round's wall time."
    b = dict(min(rounds, key=lambda r: r['seconds']))
    b['rounds_s'] = [r['seconds'] for r in rounds]
    b['own_seconds'] = min(r['own_seconds'] for r in rounds)
    b['problems'] = sorted({p for r in rounds for p in r['problems']})
    return b

def evaluate(name:str, r:dict, df:pd.DataFrame, codes:np.ndarray, k:int, ncp_fn) -> dict:
    "Add class statistics, both NCPs and the k check to a best-of record (dropping its class array)."
    classes = r.pop('classes_arr')
    r.update(class_stats(classes))
    r['ncp_classic_pct'] = ncp_classic(codes, classes)
    r['ncp_reference_pct'] = 100 * ncp_reference(df, classes)
    r['ncp_leptonhub_pct'] = 100 * ncp_value(ncp_fn, df, classes) if ncp_fn else None
    if r['min_class'] < k: r['problems'].append(f"{name}: a class of {r['min_class']} rows < k = {k}")
    return r

def measure_adult(df:pd.DataFrame, k:int, repeat:int, methods:list[str], classic, lepton) -> dict:
    "Run the classic and every leptonhub method `repeat` times, interleaved; best of each, evaluated."
    codes = classic_codes(df)
    runs = {}
    if classic: runs['classic'] = lambda: run_classic(classic[0], df, codes, k)
    if lepton[0]: runs.update({m: (lambda m=m: run_leptonhub(lepton[0], df, k, m)) for m in methods})
    rounds = {name: [] for name in runs}
    for i in range(repeat):
        for name, fn in runs.items():
            rounds[name].append(fn())
            print(f"  round {i + 1}/{repeat} {name:<16} {rounds[name][-1]['seconds']:.3f}s", flush=True)
    out = {name: evaluate(name, best_of(rs), df, codes, k, lepton[1]) for name, rs in rounds.items()}
    if 'classic' in out:
        c = out['classic']
        if abs(c['reported_ncp_pct'] - c['ncp_classic_pct']) > 1e-6:
            c['problems'].append(f"classic: its reported NCP {c['reported_ncp_pct']:.6f}% != the classic formula on its classes {c['ncp_classic_pct']:.6f}%")
    return out

def measure_scale(df:pd.DataFrame, n:int, k:int, repeat:int, methods:list[str], anonymize) -> dict:
    "Time every leptonhub method on `n` resampled, jittered rows, best of `repeat`; class checks and leptonhub's own NCP."
    t0 = time.perf_counter()
    big = resample(df, n)
    print(f'scale: resampled {n:,} rows in {time.perf_counter() - t0:.1f}s; the classic is NOT run at this size', flush=True)
    codes, out = classic_codes(big), {}
    for m in methods:
        rounds = []
        for i in range(repeat):
            rounds.append(run_leptonhub(anonymize, big, k, m))
            print(f"  scale round {i + 1}/{repeat} {m:<16} {rounds[-1]['seconds']:.2f}s", flush=True)
        b = best_of(rounds)
        classes = b.pop('classes_arr')
        b.update(class_stats(classes), ncp_classic_pct=ncp_classic(codes, classes))
        if b['min_class'] < k: b['problems'].append(f"scale {m}: a class of {b['min_class']} rows < k = {k}")
        out[m] = b
    return out

# ---------------------------------------------------------------- report

def fmt(v, spec:str='.2f') -> str:
    "A number formatted, or '-' for None."
    return '-' if v is None else format(v, spec)

def text_table(rows:list[tuple]) -> str:
    "Rows of strings as aligned columns, the first left-aligned."
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows)

def adult_table(res:dict, k:int) -> str:
    "The Adult results and the target verdicts."
    rows = [('Adult, k = %d' % k, 'wall s', 'own s', 'classes', 'min', 'suppr.', 'NCP own %', 'NCP classic %', 'NCP ncp() %', 'time / classic')]
    base = res.get('classic', {}).get('seconds')
    for name, r in res.items():
        label = 'classic Mondrian (strict)' if name == 'classic' else f'leptonhub {name}'
        rows.append((label, fmt(r['seconds'], '.3f'), fmt(r['own_seconds'], '.3f'), str(r['classes']), str(r['min_class']),
                     str(r['suppressed']), fmt(r['reported_ncp_pct']), fmt(r['ncp_classic_pct']),
                     fmt(r['ncp_leptonhub_pct'] if r['ncp_leptonhub_pct'] is not None else r['ncp_reference_pct']),
                     '-' if name == 'classic' or not base else fmt(r['seconds'] / base)))
    lines = [text_table(rows)]
    if not any(r['ncp_leptonhub_pct'] is not None for r in res.values()):
        lines.append("(NCP ncp() column: leptonhub's ncp() is not available; the values are this script's reference implementation of its definition)")
    for name, r in res.items():
        if name == 'classic': continue
        t = f"time {r['seconds'] / base:.2f} x classic ({'meets' if r['seconds'] / base <= TIME_TARGET else 'MISSES'} <= {TIME_TARGET})" if base else 'time: no classic to compare'
        ncp_own = r['ncp_leptonhub_pct'] if r['ncp_leptonhub_pct'] is not None else r['reported_ncp_pct']
        lines.append(f"leptonhub {name}: {t}; NCP {ncp_own:.2f}% by leptonhub's definition ({'meets' if ncp_own <= NCP_TARGET else 'MISSES'} "
                     f"<= {NCP_TARGET:g}%), {r['ncp_classic_pct']:.2f}% by the classic's formula ({'meets' if r['ncp_classic_pct'] <= NCP_TARGET else 'misses'})")
    return '\n'.join(lines)

def scale_table(res:dict, n:int, k:int) -> str:
    "The scale results and the target verdicts."
    rows = [(f'{n:,} rows, k = {k}', 'wall s', 'own s', 'classes', 'min', 'suppr.', 'NCP own %', 'NCP classic %', f'<= {SCALE_TARGET:g} s')]
    for m, r in res.items():
        rows.append((f'leptonhub {m}', fmt(r['seconds']), fmt(r['own_seconds']), str(r['classes']), str(r['min_class']), str(r['suppressed']),
                     fmt(r['reported_ncp_pct']), fmt(r['ncp_classic_pct']), 'meets' if r['seconds'] <= SCALE_TARGET else 'MISSES'))
    return text_table(rows) + '\n(classic Mondrian: not run at this size)'

def versions() -> dict:
    "Versions and machine."
    return {'python': platform.python_version(), 'numpy': np.__version__, 'pandas': pd.__version__,
            'machine': platform.machine(), 'cpus': os.cpu_count()}

def main(a:argparse.Namespace) -> int:
    "Load Adult, run both sides, check the classes, print and save the report; non-zero exit on any failed check."
    methods = [m.strip() for m in a.methods.split(',') if m.strip()]
    df = read_adult(a.adult)
    print(f'Adult: {len(df):,} rows without a "?" ({a.adult}); QIs {QI}; k = {a.k}; best of {a.repeat}', flush=True)
    classic, lepton, problems = load_classic(a.classic), load_leptonhub(), []
    if classic:
        theirs = classic_reader_rows(classic[1], a.adult)
        ours = [r[:-1] for r in classic_rows(df, classic_codes(df))]
        if theirs != ours: problems.append("input: the classic's own read_data() gives other rows than this script feeds it")
        else: print("input: identical to the classic's own read_data() (30,162 rows, categories numbered by first appearance)", flush=True)
    adult = measure_adult(df, a.k, a.repeat, methods, classic, lepton) if (classic or lepton[0]) else {}
    if adult: print(adult_table(adult, a.k))
    else: print('Adult: nothing to measure (neither the classic nor leptonhub.privacy.anonymize.anonymize is available)')
    scale = {}
    if a.scale_rows and lepton[0]:
        scale = measure_scale(df, a.scale_rows, a.k, a.repeat, methods, lepton[0])
        print(scale_table(scale, a.scale_rows, a.k))
    elif a.scale_rows: print('scale: skipped, leptonhub.privacy.anonymize is not available (the classic is never run at scale)')
    for r in (*adult.values(), *scale.values()): problems += r['problems']
    for name, r in adult.items():
        if r['ncp_leptonhub_pct'] is not None and abs(r['ncp_leptonhub_pct'] - r['ncp_reference_pct']) > 1e-6:
            print(f"WARNING: {name}: leptonhub's ncp() gives {r['ncp_leptonhub_pct']:.6f}% but its stated definition gives "
                  f"{r['ncp_reference_pct']:.6f}% on the same classes", file=sys.stderr)
        if name != 'classic' and r['ncp_leptonhub_pct'] is not None and abs(r['ncp_leptonhub_pct'] - r['reported_ncp_pct']) > 1e-6:
            print(f"WARNING: {name}: res.ncp is {r['reported_ncp_pct']:.6f}% but ncp() on res.classes gives {r['ncp_leptonhub_pct']:.6f}%", file=sys.stderr)
    base = adult.get('classic', {}).get('seconds')
    report = {'k': a.k, 'repeat': a.repeat, 'rows': len(df), 'qi': QI, 'sensitive': SA, 'methods': methods,
              'classic_path': str(a.classic) if classic else None, 'adult': adult,
              'time_ratio': {m: r['seconds'] / base for m, r in adult.items() if m != 'classic'} if base else {},
              'scale_rows': a.scale_rows, 'scale': scale,
              'targets': {'time_ratio': TIME_TARGET, 'ncp_pct': NCP_TARGET, 'scale_seconds': SCALE_TARGET},
              'problems': problems, **versions()}
    return finish('anonymize', report, problems)

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--k', type=int, default=10, help='k of k-anonymity (default 10)')
    p.add_argument('--repeat', type=int, default=3, help='rounds per method; the best counts (default 3)')
    p.add_argument('--classic', type=Path, default=Path('/tmp/mondrian_classic'),
                   help='extracted copy of github.com/qiyuangong/Mondrian (default /tmp/mondrian_classic); skipped if absent')
    p.add_argument('--scale-rows', type=int, default=1_000_000, help='rows for the leptonhub scale test (default 1,000,000; 0 skips it)')
    p.add_argument('--methods', default=','.join(METHODS), help=f"leptonhub methods, comma-separated (default {','.join(METHODS)})")
    p.add_argument('--adult', type=Path, default=ADULT, help=f'UCI adult.data (default {ADULT})')
    a = p.parse_args(argv)
    if a.k < 2: p.error('--k must be at least 2')
    if a.repeat < 1: p.error('--repeat must be at least 1')
    if a.scale_rows < 0: p.error('--scale-rows must be >= 0')
    if bad := set(m.strip() for m in a.methods.split(',') if m.strip()) - set(METHODS): p.error(f'unknown methods {sorted(bad)}')
    return a

if __name__ == '__main__':
    sys.exit(main(parse()))
