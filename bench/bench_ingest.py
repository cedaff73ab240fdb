"""Benchmark `leptonhub.platform.ingest.ingest` against the floor `pd.read_csv` + `drop_duplicates` on a generated messy CSV.

Run: `.venv/bin/python bench/bench_ingest.py [--rows 1000000] [--repeat 3]`.
Each method runs in its own fresh Python process (best of `--repeat` runs, peak RSS of that process); results go to
`bench/results/ingest.json`.
"""
from __future__ import annotations
from results_io import finish
import argparse, json, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd
from visits import SEED, SITES, GRADES, SEXES, bench_schema

DUP_SHARE, INVALID_SHARE = 0.05, 0.02
TARGET = 3.0 # leptonhub time / floor time

# ---------------------------------------------------------------- generation

def base_table(n:int, rng:np.random.Generator) -> pd.DataFrame:
    "`n` distinct valid records (12 columns; the id makes each unique)."
    day0 = np.datetime64('2015-01-01')
    return pd.DataFrame({
        'id': 'P' + pd.Series(np.arange(n) + 10**8).astype(str).str[1:],
        'age': rng.integers(18, 91, n), 'sex': rng.choice(SEXES, n), 'site': rng.choice(SITES, n),
        'grade': rng.choice(GRADES, n), 'visits': rng.integers(0, 51, n), 'smoker': rng.integers(0, 2, n),
        'bp': rng.uniform(80, 200, n).round(1), 'chol': rng.uniform(120, 400, n).round(1),
        'bmi': rng.uniform(16, 45, n).round(2), 'score': rng.random(n).round(4),
        'visit_date': (day0 + rng.integers(0, 3650, n).astype('timedelta64[D]')).astype(str)})

def spoil(df:pd.DataFrame, rows:np.ndarray, rng:np.random.Generator) -> pd.DataFrame:
    "Make each of `rows` invalid in one of four ways: age out of range, bp unreadable, chol too high, sex not a code."
    kind = rng.integers(0, 4, len(rows))
    df['bp'] = df['bp'].astype(str)
    df.loc[rows[kind == 0], 'age'] = 150
    df.loc[rows[kind == 1], 'bp'] = 'n/a-x'
    df.loc[rows[kind == 2], 'chol'] = 9999.0
    df.loc[rows[kind == 3], 'sex'] = 'X'
    return df

def generate(n:int, path:Path, seed:int=SEED) -> dict:
    "Write an `n`-row CSV with exact duplicate and invalid rows to `path`; return how many of each."
    rng = np.random.default_rng(seed)
    n_dup = int(round(n * DUP_SHARE))
    n_base = n - n_dup
    n_inv = int(round(n * INVALID_SHARE))
    base = base_table(n_base, rng)
    invalid = np.sort(rng.choice(n_base, n_inv, replace=False))
    base = spoil(base, invalid, rng)
    valid = np.setdiff1d(np.arange(n_base), invalid)
    copies = base.iloc[rng.choice(valid, n_dup, replace=True)] # duplicates only of valid rows, so each is counted once
    table = pd.concat([base, copies], ignore_index=True).iloc[rng.permutation(n)]
    write_csv(table, path)
    return {'rows': n, 'duplicates': n_dup, 'invalid': n_inv, 'bytes': path.stat().st_size}

def write_csv(df:pd.DataFrame, path:Path):
    "Write `df` as an unquoted CSV with a header, fast (pyarrow)."
    import pyarrow as pa, pyarrow.csv as pcsv
    with open(path, 'wb') as f:
        f.write((','.join(df.columns) + '\n').encode())
        pcsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), f,
                       pcsv.WriteOptions(include_header=False, quoting_style='none'))

# ---------------------------------------------------------------- the measured methods (each in a worker process)

def run_floor(path:str) -> dict:
    "The floor: read the CSV with pandas and drop exact duplicates."
    df = pd.read_csv(path)
    out = df.drop_duplicates()
    return {'rows_in': len(df), 'rows_out': len(out), 'duplicates': len(df) - len(out)}

def run_leptonhub(path:str) -> dict:
    "leptonhub: `ingest` with the declared schema, then quality scoring of the cleaned table."
    from leptonhub.platform.ingest import ingest
    from leptonhub.metrics.quality import score
    cleaned = ingest([path], schema=bench_schema())
    t0 = time.perf_counter()
    q = float(score(cleaned.data, cleaned.schema).Q)
    led = cleaned.ledger.frame().set_index('step')
    return {'rows_in': int(led.loc['clean', 'rows_in']), 'rows_out': len(cleaned.data), 'duplicates': int(led.loc['clean', 'duplicates']),
            'invalid': int(led.loc['clean', 'invalid']), 'quarantined': len(cleaned.quarantine), 'Q': q,
            'steps_s': {**{k: float(v) for k, v in led['seconds'].items()}, 'quality': time.perf_counter() - t0}}

METHODS = {'floor': run_floor, 'leptonhub': run_leptonhub}

def worker(method:str, path:str, repeat:int) -> dict:
    "Run `method` `repeat` times in this process: best and all wall times, its result, and the peak RSS."
    import leptonhub.platform.ingest # noqa: F401 -- imports are not part of the timing
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = METHODS[method](path)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == 'darwin' else 1024)
    return {'method': method, 'best_s': min(times), 'times_s': times, 'peak_rss_mb': peak / 2**20, **result}

def measure(method:str, path:Path, repeat:int) -> dict:
    "Run `worker` for `method` in a fresh interpreter and return what it reports."
    cmd = [sys.executable, __file__, '--worker', method, '--path', str(path), '--repeat', str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

# ---------------------------------------------------------------- report

def check_counts(gen:dict, floor:dict, lep:dict) -> list[str]:
    "Differences between what was generated and what each method found (empty when all agree)."
    want = {'rows_in': gen['rows'], 'duplicates': gen['duplicates'], 'invalid': gen['invalid'],
            'rows_out': gen['rows'] - gen['duplicates'] - gen['invalid']}
    bad = [f'leptonhub {k}: {lep[k]} != {v}' for k, v in want.items() if lep[k] != v]
    if lep['quarantined'] != gen['duplicates'] + gen['invalid']: bad.append(f"leptonhub quarantined {lep['quarantined']}")
    if floor['duplicates'] != gen['duplicates']: bad.append(f"floor duplicates: {floor['duplicates']} != {gen['duplicates']}")
    return bad

def table(gen:dict, floor:dict, lep:dict) -> str:
    "The results as a small text table."
    ratio = lep['best_s'] / floor['best_s']
    rows = [('', 'floor', 'leptonhub'),
            ('best time (s)', f"{floor['best_s']:.3f}", f"{lep['best_s']:.3f}"),
            ('peak RSS (MiB)', f"{floor['peak_rss_mb']:.0f}", f"{lep['peak_rss_mb']:.0f}"),
            ('rows in', f"{floor['rows_in']:,}", f"{lep['rows_in']:,}"),
            ('rows out', f"{floor['rows_out']:,}", f"{lep['rows_out']:,}"),
            ('duplicates found / made', f"{floor['duplicates']:,} / {gen['duplicates']:,}", f"{lep['duplicates']:,} / {gen['duplicates']:,}"),
            ('invalid found / made', f"- / {gen['invalid']:,}", f"{lep['invalid']:,} / {gen['invalid']:,}"),
            ('quality Q', '-', f"{lep['Q']:.4f}" if 'Q' in lep else 'not scored')]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ['  '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    verdict = 'meets' if ratio <= TARGET else 'MISSES'
    steps = ', '.join(f'{k} {v:.3f}' for k, v in lep['steps_s'].items())
    return '\n'.join(lines + [f'leptonhub steps (s, last run): {steps}',
                              f'ratio leptonhub / floor: {ratio:.2f}x ({verdict} the target of <= {TARGET:g}x)'])

def main(rows:int, repeat:int) -> int:
    "Generate the data, measure both methods, print and save the report; non-zero exit if the counts disagree."
    with tempfile.TemporaryDirectory(prefix='bench_ingest_') as tmp:
        path = Path(tmp)/'messy.csv'
        t0 = time.perf_counter()
        gen = generate(rows, path)
        gen['seconds'] = time.perf_counter() - t0
        print(f"generated {rows:,} rows, {gen['bytes'] / 2**20:.1f} MiB in {gen['seconds']:.1f}s "
              f"({gen['duplicates']:,} exact duplicates, {gen['invalid']:,} invalid rows)", flush=True)
        floor, lep = measure('floor', path, repeat), measure('leptonhub', path, repeat)
    print(table(gen, floor, lep))
    problems = check_counts(gen, floor, lep)
    report = {'rows': rows, 'repeat': repeat, 'generated': gen, 'floor': floor, 'leptonhub': lep,
              'ratio': lep['best_s'] / floor['best_s'], 'target_ratio': TARGET, 'count_errors': problems,
              'python': platform.python_version(), 'pandas': pd.__version__, 'machine': platform.machine()}
    return finish('ingest', report, problems)

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=1_000_000, help='rows to generate (default 1,000,000)')
    p.add_argument('--repeat', type=int, default=3, help='runs per method; the best counts (default 3)')
    p.add_argument('--worker', choices=list(METHODS), help=argparse.SUPPRESS)
    p.add_argument('--path', help=argparse.SUPPRESS)
    return p.parse_args(argv)

if __name__ == '__main__':
    args = parse()
    if args.worker: print(json.dumps(worker(args.worker, args.path, args.repeat)))
    else: sys.exit(main(args.rows, args.repeat))
