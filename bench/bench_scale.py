"""Benchmark publishing with anonymisation through Dask (a LocalCluster of worker processes) against the in-memory path.

Run: `nice .venv/bin/python bench/bench_scale.py [--rows 10000000] [--paths memory,dask] [--workers 2] [--worker-memory 4GiB]`.
The table is generated (Adult-like, 12 columns: an identifier, UCI Adult's nine attributes resampled with noise from the copy
shipped in leptonhub/data/adult, hours per week and a sampling weight) and written as Parquet parts. Each path then runs in a
child process of its own, timed from reading the Parquet to the committed version: the identifier pseudonymised, the eight
quasi-identifiers made k-anonymous (k = 10, ARX's hierarchies), the release published into a fresh hub (PII scan off: the
table has no free text). The parent samples the resident memory (RSS) of the child's whole process tree, the cluster's
scheduler and workers included, every 0.2 s. After timing, each child reads its version back and reports a digest of its
content; the two digests must agree. The machine may be shared: the CPU seconds of the process tree and the load average
before and after are recorded beside the wall time. Runs accumulate in `bench/results/scale.json` (one per path and size); the largest table
each path would handle in 24 GiB is extrapolated from peak memory against rows over all runs.
"""
from __future__ import annotations
from results_io import RESULTS, finish
import argparse, hashlib, json, os, platform, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np, pandas as pd

QI = ['sex', 'age', 'race', 'marital-status', 'education', 'native-country', 'workclass', 'occupation']
K, KEY, SEED = 10, b'bench-scale-pseudonym-key-32byte', 20260601
BUDGET_GIB = 24
JITTER_AGE, RESAMPLE_P = 2, 0.05

# ---------------------------------------------------------------- the data

def chunk(start:int, n:int, seed:int=SEED) -> pd.DataFrame:
    "`n` Adult-like rows numbered from `start`: Adult's rows resampled, age jittered, categories sometimes redrawn from their marginals."
    from leptonhub.examples import adult
    ad = adult()
    rng = np.random.default_rng([seed, start])
    out = ad.iloc[rng.integers(0, len(ad), n)].reset_index(drop=True)
    out['age'] = np.clip(out['age'].to_numpy() + rng.integers(-JITTER_AGE, JITTER_AGE + 1, n), ad['age'].min(), ad['age'].max())
    for c in QI:
        if c == 'age': continue
        freq = ad[c].value_counts(normalize=True)
        redraw = rng.random(n) < RESAMPLE_P
        out.loc[redraw, c] = rng.choice(freq.index.to_numpy(), size=int(redraw.sum()), p=freq.to_numpy())
    out.insert(0, 'id', 'P' + pd.Series(np.arange(start, start + n)).astype(str).str.zfill(10))
    out['hours-per-week'] = np.clip(np.rint(rng.normal(40, 12, n)), 1, 99).astype('int64')
    out['fnlwgt'] = np.rint(rng.lognormal(12, 0.6, n)).astype('int64')
    return out

def generate(rows:int, folder:Path, part_rows:int) -> Path:
    "Write `rows` generated rows as Parquet parts of `part_rows` rows into `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, rows, part_rows)):
        chunk(start, min(part_rows, rows - start)).to_parquet(folder/f'part.{i:05d}.parquet', index=False)
    return folder

def release_schema():
    "The schema of the released table: labels as categories, the pseudonym as text, the two untouched numbers as integers."
    from leptonhub.platform.schema import Schema, Field
    return Schema({'id': Field('str'), **{c: Field('category') for c in QI}, 'salary-class': Field('category'),
                   'hours-per-week': Field('int'), 'fnlwgt': Field('int')})

def digest(df:pd.DataFrame) -> str:
    "A SHA-256 of the table's values row by row, in order (categories compared by their labels)."
    plain = df.astype({c: object for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})
    return hashlib.sha256(pd.util.hash_pandas_object(plain, index=False).to_numpy().tobytes()).hexdigest()

# ---------------------------------------------------------------- one path, in a child process

def say(**kw):
    "Report to the parent, one JSON line."
    print('BENCH ' + json.dumps(kw), flush=True)

def run_memory(data:Path, home:Path, cell_rows:int) -> dict:
    "The in-memory path: read everything, `anonymize`, `Hub.publish` with compute `local`."
    from leptonhub.platform.hub import Hub
    from leptonhub.privacy.anonymize import anonymize
    from leptonhub.examples import adult_hierarchies
    hub, hs = Hub.init(home), adult_hierarchies()
    say(phase='start')
    t0 = time.perf_counter()
    df = pd.read_parquet(data)
    rel = anonymize(df, QI, k=K, hierarchies=hs, pseudonyms={'id': KEY})
    del df
    t1 = time.perf_counter()
    res = hub.publish('adult', rel.data, schema=release_schema(), pii='off', policy=rel.summary())
    t2 = time.perf_counter()
    return {'anonymize_s': t1 - t0, 'publish_s': t2 - t1, 'seconds': t2 - t0, 'published': res, 'k': rel.k, 'ncp': rel.ncp,
            'suppressed': rel.suppressed, 'classes': int(len(rel.class_sizes)), 'hub': hub}

def run_dask(data:Path, home:Path, cell_rows:int, workers:int, worker_memory:str) -> dict:
    "The Dask path: `scale.anonymize` on the Parquet parts, then `Hub.publish` with compute `dask` (which ingests, scores and writes on the cluster)."
    import dask
    from leptonhub.platform.hub import Hub
    from leptonhub.platform import scale
    from leptonhub.examples import adult_hierarchies
    t = time.perf_counter()
    client = scale.connect('dask', workers=workers, memory_limit=worker_memory)
    start_s = time.perf_counter() - t
    hub, hs = Hub.init(home), adult_hierarchies()
    assert hub.settings.compute == 'dask', hub.settings
    say(phase='start')
    t0 = time.perf_counter()
    with dask.config.set(scheduler=client):
        rel = scale.anonymize(scale.read_parquet(data), QI, k=K, hierarchies=hs, pseudonyms={'id': KEY}, cell_rows=cell_rows)
        t1 = time.perf_counter()
        res = hub.publish('adult', rel.data, schema=release_schema(), pii='off', policy=rel.summary())
    t2 = time.perf_counter()
    return {'anonymize_s': t1 - t0, 'publish_s': t2 - t1, 'seconds': t2 - t0, 'cluster_start_s': start_s, 'published': res, 'k': rel.k,
            'ncp': rel.ncp, 'suppressed': rel.suppressed, 'classes': int(len(rel.class_sizes)), 'cells': rel.cells, 'hub': hub}

def child(args) -> int:
    "Run one path, report its figures, then read the version back and report its digest."
    os.environ['LEPTONHUB_COMPUTE'] = 'dask' if args.run == 'dask' else 'local'
    home = Path(args.home)
    r = run_memory(Path(args.data), home, args.cell_rows) if args.run == 'memory' else run_dask(Path(args.data), home, args.cell_rows, args.workers, args.worker_memory)
    hub = r.pop('hub')
    say(phase='done', **r)
    if args.check:
        df = hub.read('adult')
        say(phase='checked', digest=digest(df), rows=len(df), columns=list(df.columns))
    return 0

# ---------------------------------------------------------------- the parent: spawn, sample, record

def tree_rss(pid:int, cpu:dict|None=None) -> int:
    "Resident bytes of process `pid` and all its descendants; their CPU seconds so far are noted in `cpu` (by pid)."
    import psutil
    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.NoSuchProcess: return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
            if cpu is not None: t = q.cpu_times(); cpu[q.pid] = max(cpu.get(q.pid, 0.0), t.user + t.system)
        except psutil.NoSuchProcess: pass
    return total

def measure(path:str, args, data:Path) -> dict:
    "Run `path` in a child process; sample its process tree's RSS until it has published; return its figures."
    home = Path(tempfile.mkdtemp(prefix=f'bench_scale_{path}_'))/'hub'
    cmd = [sys.executable, __file__, '--run', path, '--data', str(data), '--home', str(home), '--rows', str(args.rows),
           '--cell-rows', str(args.cell_rows), '--workers', str(args.workers), '--worker-memory', args.worker_memory] + (['--check'] if args.check else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
    state = {'peak': 0, 'base': None, 'sampling': True, 'series': [], 'cpu': {}, 'cpu0': 0.0}
    def sample():
        t0 = time.perf_counter()
        while state['sampling'] and proc.poll() is None:
            rss = tree_rss(proc.pid, state['cpu'])
            state['peak'] = max(state['peak'], rss)
            state['series'].append((round(time.perf_counter() - t0, 1), rss))
            time.sleep(0.2)
    th = threading.Thread(target=sample, daemon=True); th.start()
    out = {}
    for line in proc.stdout:
        if not line.startswith('BENCH '): continue
        msg = json.loads(line[6:])
        if msg['phase'] == 'start':
            state['base'], state['peak'] = tree_rss(proc.pid, state['cpu']), 0
            state['cpu0'], state['load0'] = sum(state['cpu'].values()), os.getloadavg()[0]
        elif msg['phase'] == 'done':
            state['sampling'] = False
            tree_rss(proc.pid, state['cpu'])
            out.update(msg, cpu_s=sum(state['cpu'].values()) - state['cpu0'], load_before=state['load0'], load_after=os.getloadavg()[0])
            print(f"  {path}: {msg['seconds']:.1f} s ({out['cpu_s']:.0f} CPU s; load average {out['load_before']:.1f} -> {out['load_after']:.1f}), "
                  f"peak RSS {state['peak'] / 2**30:.2f} GiB", flush=True)
        elif msg['phase'] == 'checked': out['check'] = msg
    rc = proc.wait()
    state['sampling'] = False; th.join()
    shutil.rmtree(home.parent, ignore_errors=True)
    if rc: raise SystemExit(f'the {path} run failed (exit {rc})')
    out.pop('phase', None)
    step = max(1, len(state['series']) // 200)
    return {'path': path, 'rows': args.rows, 'rows_per_s': args.rows / out['seconds'], 'rows_per_cpu_s': args.rows / max(out['cpu_s'], 1e-9),
            'peak_rss_gib': state['peak'] / 2**30,
            'start_rss_gib': (state['base'] or 0) / 2**30, 'rss_series': state['series'][::step], **out}

def extrapolate(runs:list[dict]) -> dict:
    "Per path, peak RSS as a + b·rows fitted over its runs (least squares; with one run, a = its RSS at start), and the rows that fit in the budget."
    out = {}
    for path in sorted({r['path'] for r in runs}):
        rs = sorted((r for r in runs if r['path'] == path), key=lambda r: r['rows'])
        x, y = np.array([r['rows'] for r in rs], float), np.array([r['peak_rss_gib'] for r in rs])
        if len(rs) > 1: b, a = np.polyfit(x, y, 1)
        else: a = rs[0]['start_rss_gib']; b = (y[0] - a) / x[0]
        out[path] = {'fixed_gib': float(a), 'bytes_per_row': float(b * 2**30), 'from_rows': [int(v) for v in x],
                     'largest_rows_in_budget': int((BUDGET_GIB - a) / b) if b > 0 else None, 'budget_gib': BUDGET_GIB,
                     'note': 'an extrapolation: a straight line through peak RSS against rows, measured only at from_rows'}
    return out

def main(args) -> int:
    "Generate the data once, run each path, check their versions agree, and record the runs."
    import psutil
    with tempfile.TemporaryDirectory(prefix='bench_scale_data_') as tmp:
        t0 = time.perf_counter()
        data = generate(args.rows, Path(tmp)/'data', args.part_rows)
        print(f'generated {args.rows:,} rows x 12 columns in {time.perf_counter() - t0:.1f} s '
              f'({sum(p.stat().st_size for p in data.iterdir()) / 2**20:.0f} MiB of Parquet)', flush=True)
        runs = {p: measure(p, args, data) for p in args.paths}
    problems = []
    if args.check and len(runs) == 2:
        a, b = (runs[p]['check'] for p in args.paths)
        if a['digest'] != b['digest']: problems.append(f"the published versions differ ({a['digest'][:12]} vs {b['digest'][:12]})")
    for p, r in runs.items():
        if r['published']['rows'] != args.rows: problems.append(f"{p} published {r['published']['rows']} rows of {args.rows}")
        if r['k'] < K: problems.append(f"{p} reached k = {r['k']} < {K}")
    path = RESULTS/'scale.json'
    old = json.loads(path.read_text()) if path.exists() else {}
    kept = [r for r in old.get('runs', []) if (r['path'], r['rows']) not in {(p, args.rows) for p in runs}]
    all_runs = sorted(kept + list(runs.values()), key=lambda r: (r['path'], r['rows']))
    report = {'runs': all_runs, 'extrapolated': extrapolate(all_runs), 'k': K, 'qi': QI, 'workers': args.workers, 'worker_memory': args.worker_memory,
              'cell_rows': args.cell_rows, 'problems': problems, 'machine': {'cpus': os.cpu_count(), 'memory_gib': round(psutil.virtual_memory().total / 2**30, 1),
              'python': platform.python_version(), 'pandas': pd.__version__}}
    for p, e in report['extrapolated'].items():
        print(f"{p}: {e['bytes_per_row']:.0f} bytes/row of peak over {e['from_rows']} rows -> about {e['largest_rows_in_budget'] or 0:,} rows in {BUDGET_GIB} GiB (extrapolated)")
    return finish('scale', report, problems)

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=10_000_000, help='rows to generate (default 10,000,000)')
    p.add_argument('--paths', default='memory,dask', help='which paths to run, comma-separated (default memory,dask)')
    p.add_argument('--workers', type=int, default=2, help='LocalCluster worker processes (default 2)')
    p.add_argument('--worker-memory', default='4GiB', help='memory limit of each worker (default 4GiB)')
    p.add_argument('--cell-rows', type=int, default=500_000, help='largest k-anonymity cell finished in one task (default 500,000)')
    p.add_argument('--part-rows', type=int, default=250_000, help='rows per generated Parquet part (default 250,000)')
    p.add_argument('--check', action=argparse.BooleanOptionalAction, default=True, help='read both versions back and compare them (default on)')
    p.add_argument('--run', choices=['memory', 'dask'], help=argparse.SUPPRESS)
    p.add_argument('--data', help=argparse.SUPPRESS)
    p.add_argument('--home', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.paths = [x.strip() for x in a.paths.split(',') if x.strip()]
    return a

if __name__ == '__main__':
    args = parse()
    sys.exit(child(args) if args.run else main(args))
