"""Benchmark reading a shared table remotely against reading it as a local Parquet file, and our DataLoader against a TensorDataset.

Run: `.venv/bin/python bench/bench_read.py [--rows 1000000] [--repeat 3]`.
One process publishes a generated table (`--rows` × 10 columns) to a fresh hub, serves it on a loopback port, and then,
round by round, reads it (1) with `pandas.read_parquet` from a local file — the floor —, (2) through our client
(`Hub.connect(...).read`, Arrow over HTTP, decrypted on the fly) and (3) with the stock `delta_sharing` client.
Every read is checked against the published table. Then one epoch of our `DataLoader` is timed against
`torch.utils.data.DataLoader(TensorDataset(...))` over the same tensors. Best of `--repeat` for each.
Results go to `bench/results/read.json`.
"""
from __future__ import annotations
from results_io import finish
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from torch.utils.data import TensorDataset, DataLoader as TorchLoader

TARGET_READ = 0.5 # rows/s of a remote read / rows/s of a local Parquet read
TARGET_LOADER = 0.9 # samples/s of our DataLoader / samples/s of a TensorDataset loader

def table(n:int, seed:int=7) -> pd.DataFrame:
    "A generated table of `n` rows: eight measurements, a count and a category."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'x{i}': rng.normal(size=n) for i in range(8)})
    df['visits'] = rng.integers(0, 20, n)
    df['ward'] = rng.choice(['cardio', 'neuro', 'onco', 'ortho'], n)
    return df

def clock(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out

def same(a:pd.DataFrame, b:pd.DataFrame) -> bool:
    "Do two reads hold the same rows and columns?"
    return a.shape == b.shape and list(a.columns) == list(b.columns) and np.allclose(a.x0.to_numpy(), b.x0.to_numpy()) and (a.ward.to_numpy() == b.ward.to_numpy()).all()

def loader_epoch(loader) -> int:
    "Samples seen in one pass over `loader`."
    n = 0
    for X, y in loader: n += len(y)
    return n

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', type=int, default=1_000_000)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--batch', type=int, default=256)
    a = ap.parse_args()
    import delta_sharing
    from leptonhub.platform.hub import Hub
    from leptonhub.platform.api import running
    from leptonhub.platform.delta import profile, table_address
    from leptonhub.platform.data import DataLoader, TableEncoder

    work = Path(tempfile.mkdtemp())
    df = table(a.rows)
    parquet = work/'table.parquet'
    df.to_parquet(parquet, index=False)
    hub = Hub.init(work/'hub')
    t_pub, _ = clock(lambda: hub.publish('big', df))
    g = hub.grant('big', to='lab', purpose='benchmark', view='raw')
    share = work/'lab.share'
    times = {'local_parquet': [], 'leptonhub_client': [], 'delta_sharing': []}
    ok = True
    with running(hub) as url:
        share.write_text(json.dumps(profile(url, g['token'])))
        remote = Hub.connect(url, g['token'])
        want = Hub(work/'hub').read('big')   # the published table (the generated one plus its provenance column `source`), read by another Hub: the server's cache stays cold
        for r in range(a.repeat):
            for name, fn, expect in [('local_parquet', lambda: pd.read_parquet(parquet), df), ('leptonhub_client', lambda: remote.read('big'), want),
                                     ('delta_sharing', lambda: delta_sharing.load_as_pandas(f'{share}#{table_address("big", "raw")}'), want)]:
                s, got = clock(fn)
                ok &= same(got, expect)
                times[name].append(s)
                print(f'round {r + 1}: {name:17s} {s:6.2f} s  {a.rows / s / 1e6:6.2f} M rows/s', flush=True)
    best = {k: min(v) for k, v in times.items()}
    rate = {k: a.rows / v for k, v in best.items()}

    enc = TableEncoder.fit(df.head(50_000), target='ward')
    X, y = enc.encode(df)
    ours = DataLoader(df, target='ward', encoder=enc, batch_size=a.batch, shuffle=True, seed=0)
    base = TorchLoader(TensorDataset(X['num'], y), batch_size=a.batch, shuffle=True, generator=torch.Generator().manual_seed(0))
    lt = {'leptonhub_dataloader': [], 'tensordataset': []}
    for r in range(a.repeat):
        for name, loader in [('leptonhub_dataloader', ours), ('tensordataset', base)]:
            s, n = clock(lambda: loader_epoch(loader))
            ok &= n == a.rows
            lt[name].append(s)
            print(f'round {r + 1}: {name:20s} {s:6.2f} s  {a.rows / s / 1e3:8.1f} K samples/s', flush=True)
    lbest = {k: min(v) for k, v in lt.items()}

    report = {'rows': a.rows, 'columns': df.shape[1], 'repeat': a.repeat, 'publish_s': round(t_pub, 2), 'checked': bool(ok),
              'read_s': {k: round(v, 3) for k, v in best.items()}, 'rows_per_s': {k: round(v) for k, v in rate.items()},
              'first_read_s': {k: round(v[0], 3) for k, v in times.items()},
              'ratio_first_client_vs_parquet': round(times['local_parquet'][0] / times['leptonhub_client'][0], 3),
              'ratio_client_vs_parquet': round(rate['leptonhub_client'] / rate['local_parquet'], 3),
              'ratio_delta_vs_parquet': round(rate['delta_sharing'] / rate['local_parquet'], 3),
              'epoch_s': {k: round(v, 3) for k, v in lbest.items()}, 'batch_size': a.batch,
              'ratio_dataloader_vs_tensordataset': round(lbest['tensordataset'] / lbest['leptonhub_dataloader'], 3),
              'targets': {'read': TARGET_READ, 'dataloader': TARGET_LOADER},
              'machine': {'python': platform.python_version(), 'cpus': os.cpu_count(), 'torch': torch.__version__}}
    print(json.dumps({k: report[k] for k in ('rows_per_s', 'first_read_s', 'ratio_client_vs_parquet', 'ratio_first_client_vs_parquet', 'ratio_delta_vs_parquet', 'ratio_dataloader_vs_tensordataset')}, indent=1))
    problems = [] if ok else ['a read or an epoch did not return the published table']
    problems += [f'{k} reads at {report[k]} x the local Parquet read (target {TARGET_READ})' for k in ('ratio_client_vs_parquet', 'ratio_delta_vs_parquet') if report[k] < TARGET_READ]
    if report['ratio_dataloader_vs_tensordataset'] < TARGET_LOADER: problems.append(f"DataLoader at {report['ratio_dataloader_vs_tensordataset']} x TensorDataset (target {TARGET_LOADER})")
    return finish('read', report, problems)

if __name__ == '__main__': sys.exit(main())
