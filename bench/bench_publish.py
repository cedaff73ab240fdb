"""Benchmark `Hub.publish` + `Hub.read` against the baseline `df.to_parquet` + `pd.read_parquet` on one generated DataFrame.

Run: `.venv/bin/python bench/bench_publish.py [--rows 1000000] [--repeat 3]`.
Both methods run in this one process on the same DataFrame, interleaved round by round (best of `--repeat` each). Every
leptonhub round publishes into a fresh hub in a temporary folder. What each round reads back is checked value for value
against what was generated. Results go to `bench/results/publish.json`.
"""
from __future__ import annotations
from results_io import finish
import argparse, json, platform, resource, sys, tempfile, time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
import numpy as np, pandas as pd, pyarrow as pa
from visits import SEED, SITES, GRADES, SEXES, bench_schema

TARGET = 3.0 # leptonhub time / baseline time, for publish + read

# ---------------------------------------------------------------- the data

def generate(n:int, seed:int=SEED) -> pd.DataFrame:
    "`n` distinct, valid records in 12 typed columns: ints, floats, three categoricals, a unique id and a date."
    rng = np.random.default_rng(seed)
    cat = lambda values: pd.Categorical.from_codes(rng.integers(0, len(values), n), values)
    return pd.DataFrame({
        'id': 'P' + pd.Series(np.arange(n) + 10**9).astype(str).str[1:],
        'age': rng.integers(18, 91, n), 'sex': cat(SEXES), 'site': cat(SITES), 'grade': cat(GRADES),
        'visits': rng.integers(0, 51, n), 'smoker': rng.integers(0, 2, n),
        'bp': rng.uniform(80, 200, n).round(1), 'chol': rng.uniform(120, 400, n).round(1),
        'bmi': rng.uniform(16, 45, n).round(2), 'score': rng.random(n).round(4),
        'visit_date': np.datetime64('2015-01-01') + rng.integers(0, 3650, n).astype('timedelta64[D]')})

def same_values(out:pd.DataFrame, df:pd.DataFrame) -> list[str]:
    "Columns of `df` whose values `out` does not give back exactly (ints may come back as float64)."
    bad = []
    for c in df.columns:
        a, b = out[c], df[c]
        if isinstance(b.dtype, pd.CategoricalDtype) or b.dtype == object or pd.api.types.is_string_dtype(b):
            ok = a.astype(str).tolist() == b.astype(str).tolist()
        elif pd.api.types.is_datetime64_any_dtype(b): ok = np.array_equal(a.to_numpy('datetime64[us]'), b.to_numpy('datetime64[us]'))
        else: ok = np.array_equal(a.to_numpy(float), b.to_numpy(float))
        if not ok or len(a) != len(b): bad.append(c)
    return bad

# ---------------------------------------------------------------- timing the parts of publish and read

class Parts:
    "Accumulated seconds per named part, collected by wrapping the functions the hub calls."
    def __init__(self): self.s = defaultdict(float)

    def wrap(self, owner, attr:str, part:str):
        "Replace `owner.attr` by a version that adds its wall time to `part`; return an undo function."
        real = getattr(owner, attr)
        def timed(*a, **k):
            t0 = time.perf_counter()
            try: return real(*a, **k)
            finally: self.s[part] += time.perf_counter() - t0
        setattr(owner, attr, timed)
        return lambda: setattr(owner, attr, real)

@contextmanager
def instrumented(parts:Parts):
    "Time ingest, score, Parquet, addressing, sealing, writing, reading, opening and decoding inside the hub."
    import leptonhub.platform.hub as hub_mod, leptonhub.platform.storage as storage
    undo = [parts.wrap(hub_mod, 'ingest', 'ingest'), parts.wrap(hub_mod, 'score', 'score'),
            parts.wrap(hub_mod, 'frame_bytes', 'to parquet bytes'), parts.wrap(storage.BlobStore, 'address', 'address (HMAC-SHA256)'),
            parts.wrap(storage, 'seal_blob', 'seal (AES-GCM)'), parts.wrap(storage, '_write_local', 'write + fsync'),
            parts.wrap(storage, 'open_blob', 'open (AES-GCM)'), parts.wrap(storage.BlobStore, 'read', 'blob read + open'),
            parts.wrap(hub_mod, 'bytes_frame', 'from parquet bytes')]
    try: yield parts
    finally:
        for u in reversed(undo): u()

# ---------------------------------------------------------------- the measured methods

def run_baseline(df:pd.DataFrame, folder:Path) -> dict:
    "Baseline: `df.to_parquet(path)` then `pd.read_parquet(path)` with pyarrow, on local disk."
    path = folder/'baseline.parquet'
    t0 = time.perf_counter()
    df.to_parquet(path, engine='pyarrow')
    t1 = time.perf_counter()
    out = pd.read_parquet(path, engine='pyarrow')
    t2 = time.perf_counter()
    return {'write_s': t1 - t0, 'read_s': t2 - t1, 'total_s': t2 - t0, 'bytes': path.stat().st_size, 'out': out}

def run_leptonhub(df:pd.DataFrame, folder:Path) -> dict:
    "leptonhub: a fresh hub, `publish` with the declared schema, then `read` of the raw view, with the parts timed."
    from leptonhub.platform.hub import Hub
    hub = Hub.init(folder/'hub')
    schema = bench_schema()
    with instrumented(Parts()) as w:
        t0 = time.perf_counter()
        res = hub.publish('bench', {'gen': df}, schema=schema)
        t1 = time.perf_counter()
    with instrumented(Parts()) as r:
        t2 = time.perf_counter()
        out = hub.read('bench')
        t3 = time.perf_counter()
    steps = {e['step']: e['seconds'] for e in hub.card('bench')['ledger']}  # ingest's own ledger, kept on the version
    hub.catalog.dispose()
    pub, rd = dict(w.s), dict(r.s)
    pub['catalog + other'] = (t1 - t0) - sum(pub.values())
    rd['disk read'] = rd.pop('blob read + open', 0.0) - rd.get('open (AES-GCM)', 0.0)
    rd['catalog + audit + other'] = (t3 - t2) - sum(rd.values())
    blobs = [p for p in (folder/'hub'/'blobs').rglob('*') if p.is_file()]
    return {'write_s': t1 - t0, 'read_s': t3 - t2, 'total_s': t3 - t0, 'bytes': sum(p.stat().st_size for p in blobs),
            'publish_parts_s': pub, 'ingest_steps_s': steps, 'read_parts_s': rd, 'rows': res['rows'], 'quarantined': res['quarantined'], 'Q': res['Q'], 'out': out}

# ---------------------------------------------------------------- measuring and reporting

def best(rounds:list[dict]) -> dict:
    "The round with the best total, plus the best write and read times over all rounds."
    top = dict(min(rounds, key=lambda r: r['total_s']))
    top.pop('out', None)
    top.update(best_write_s=min(r['write_s'] for r in rounds), best_read_s=min(r['read_s'] for r in rounds),
               totals_s=[r['total_s'] for r in rounds])
    return top

def table(base:dict, lep:dict) -> str:
    "The results as a small text table, then where leptonhub's time goes."
    rows = [('', 'baseline', 'leptonhub', 'ratio'),
            ('publish / write (s)', base['best_write_s'], lep['best_write_s']),
            ('read (s)', base['best_read_s'], lep['best_read_s']),
            ('publish + read (s)', base['total_s'], lep['total_s'])]
    out = [rows[0]] + [(n, f'{b:.3f}', f'{l:.3f}', f'{l / b:.2f}x') for n, b, l in rows[1:]]
    out.append(('stored (MiB)', f"{base['bytes'] / 2**20:.1f}", f"{lep['bytes'] / 2**20:.1f}", ''))
    w = [max(len(r[i]) for r in out) for i in range(4)]
    lines = ['  '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in out]
    ratio = lep['total_s'] / base['total_s']
    fmt = lambda parts, total: ', '.join(f'{k} {v:.3f} ({v / total:.0%})' for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    storage = lep['write_s'] - lep['publish_parts_s'].get('ingest', 0) - lep['publish_parts_s'].get('score', 0)
    lines += [f"leptonhub publish parts (s, best round): {fmt(lep['publish_parts_s'], lep['write_s'])}",
              f"  of which ingest steps (s): {', '.join(f'{k} {v:.3f}' for k, v in lep['ingest_steps_s'].items())}",
              f"leptonhub read parts (s, best round): {fmt(lep['read_parts_s'], lep['read_s'])}",
              f"publish without ingest and score: {storage:.3f} s ({storage / base['write_s']:.2f}x the baseline write)",
              f"ratio leptonhub / baseline (publish + read): {ratio:.2f}x ({'meets' if ratio <= TARGET else 'MISSES'} the target of <= {TARGET:g}x)"]
    return '\n'.join(lines)

def main(rows:int, repeat:int) -> int:
    "Generate the data, measure both methods round by round, check what comes back, print and save the report."
    import leptonhub.platform.hub # noqa: F401 -- imports are not part of the timing
    t0 = time.perf_counter()
    df = generate(rows)
    print(f'generated {rows:,} rows x {df.shape[1]} columns ({df.memory_usage(deep=True).sum() / 2**20:.0f} MiB in memory) '
          f'in {time.perf_counter() - t0:.1f}s', flush=True)
    rounds, problems = {'baseline': [], 'leptonhub': []}, []
    for i in range(repeat):
        for name, fn in (('baseline', run_baseline), ('leptonhub', run_leptonhub)):
            with tempfile.TemporaryDirectory(prefix=f'bench_publish_{name}_') as tmp:
                r = fn(df, Path(tmp))
            if bad := same_values(r['out'], df): problems.append(f'{name} round {i + 1}: columns {bad} differ from what was generated')
            if name == 'leptonhub' and (r['rows'], r['quarantined']) != (rows, 0): problems.append(f"leptonhub kept {r['rows']} rows, quarantined {r['quarantined']}")
            rounds[name].append(r)
            print(f"  round {i + 1} {name:<9} publish {r['write_s']:.3f}s  read {r['read_s']:.3f}s", flush=True)
    base, lep = best(rounds['baseline']), best(rounds['leptonhub'])
    print(table(base, lep))
    report = {'rows': rows, 'columns': df.shape[1], 'repeat': repeat, 'baseline': base, 'leptonhub': lep,
              'ratio': lep['total_s'] / base['total_s'], 'ratio_publish': lep['best_write_s'] / base['best_write_s'],
              'ratio_read': lep['best_read_s'] / base['best_read_s'], 'target_ratio': TARGET, 'problems': problems,
              'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == 'darwin' else 1024) / 2**20,
              'python': platform.python_version(), 'pandas': pd.__version__, 'pyarrow': pa.__version__, 'machine': platform.machine()}
    return finish('publish', report, problems)

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=1_000_000, help='rows to generate (default 1,000,000)')
    p.add_argument('--repeat', type=int, default=3, help='rounds per method; the best counts (default 3)')
    return p.parse_args(argv)

if __name__ == '__main__':
    args = parse()
    sys.exit(main(args.rows, args.repeat))
