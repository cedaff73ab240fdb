"""Load on loopback: the hub server (`leptonhub serve`) in its own process and load generators in others, bounded in requests and time.

Run: `.venv/bin/python bench/load.py [--seconds 30] [--workers 4] [--big-rows 2000000]` (about two minutes on two cores).
It publishes two generated tables (numpy, fixed seed) to a fresh hub in a temporary folder and serves it on 127.0.0.1 only.
Phase 1, sustained mixed load: `--workers` processes, each with its own HTTP client, send a fixed mix of reads (the whole
small table as Arrow, and 1,000-row windows of it) and metadata requests (dataset list, card, versions, whoami, Delta Sharing
table metadata) until `--requests` in all or `--seconds` have passed; every answer is checked (status, row count). Phase 2,
large streaming reads: `--stream-workers` processes read the `--big-rows` table through the Python client, batch by batch,
over and over for `--seconds`, while the server's resident memory (RSS) is sampled ten times a second. Reported: throughput
and p50/p99 latency per request kind, and the server's RSS before, after its first large read and at its peak while streaming.
Checks: no request failed, and the RSS grew by less than `--rss-bound-mib` over its level after the first large read (the
table itself is decoded once and cached; each stream only holds a batch at a time). Results go to `bench/results/load.json`.
"""
from __future__ import annotations
import argparse, itertools, multiprocessing as mp, os, platform, random, signal, socket, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np, pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import finish

HOST = '127.0.0.1'   # loopback only: nothing outside this machine can reach the server
MIX = (('data arrow', 3), ('data window', 2), ('datasets', 2), ('card', 1), ('versions', 1), ('whoami', 1), ('delta metadata', 1))
LEPTONHUB = Path(sys.executable).parent/'leptonhub'

def table(n:int, seed:int) -> pd.DataFrame:
    "A generated table of `n` rows: an id, four measurements, a count and a ward."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'x{i}': rng.normal(size=n) for i in range(4)})
    df.insert(0, 'id', np.arange(n, dtype=np.int64))
    df['visits'] = rng.integers(0, 20, n)
    df['ward'] = rng.choice(['cardio', 'neuro', 'onco', 'ortho'], n)
    return df

def make_hub(home:Path, small_rows:int, big_rows:int) -> tuple[str, float]:
    "A hub with `clinic` (`small_rows`) and `big` (`big_rows`) and a consumer granted both; (its token, seconds to publish)."
    from leptonhub.platform.hub import Hub
    hub = Hub.init(home)
    t0 = time.perf_counter()
    hub.publish('clinic', table(small_rows, 1), pii='off')
    if big_rows: hub.publish('big', table(big_rows, 2), pii='off')
    took = time.perf_counter() - t0
    token = hub.grant('clinic', to='lab', purpose='load test')['token']
    if big_rows: hub.grant('big', to='lab', purpose='load test', token=False)
    hub.catalog.dispose()
    return token, took

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]

def start_server(home:Path, timeout:float=120) -> tuple[subprocess.Popen, str]:
    "`leptonhub serve` on a free loopback port, in its own process; (the process, its base URL) once /health answers."
    import httpx
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith('LEPTONHUB_')} | {'LEPTONHUB_HOME': str(home)}
    proc = subprocess.Popen([str(LEPTONHUB), 'serve', '--host', HOST, '--port', str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url, deadline = f'http://{HOST}:{port}', time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None: raise RuntimeError(f'the server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}')
        try:
            if httpx.get(f'{url}/health', timeout=2).status_code == 200: return proc, url
        except httpx.TransportError: time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f'the server did not answer within {timeout} s')

def stop_server(proc:subprocess.Popen) -> int:
    "Interrupt the server as Ctrl-C would; kill it if it does not stop within 10 s; its exit code."
    proc.send_signal(signal.SIGINT)
    try: return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()

def _request(c, kind:str, small_rows:int, rng:random.Random) -> tuple[bool, str]:
    "Send one request of `kind`; (was the answer right, what was wrong)."
    import pyarrow as pa
    if kind == 'data arrow':
        r = c.get('/api/v1/datasets/clinic/data')
        return r.status_code == 200 and pa.ipc.open_stream(r.content).read_all().num_rows == small_rows, f'{r.status_code}'
    if kind == 'data window':
        start = rng.randrange(0, max(small_rows - 1000, 1))
        r = c.get('/api/v1/datasets/clinic/data', params={'offset': start, 'limit': 1000})
        return r.status_code == 200 and pa.ipc.open_stream(r.content).read_all().column('id').to_pylist() == list(range(start, min(start + 1000, small_rows))), f'{r.status_code}'
    path = {'datasets': '/api/v1/datasets', 'card': '/api/v1/datasets/clinic/card', 'versions': '/api/v1/datasets/clinic/versions',
            'whoami': '/api/v1/whoami', 'delta metadata': '/delta-sharing/shares/leptonhub/schemas/clinic/tables/raw/metadata'}[kind]
    r = c.get(path)
    return r.status_code == 200 and len(r.content) > 10, f'{r.status_code}'

def mixed_worker(url:str, token:str, small_rows:int, seconds:float, budget, seed:int, out):
    "Send requests from `MIX` for `seconds` (from when this process is ready) or until the shared `budget` of requests is spent; put (kind, seconds, ok, why, start, end) rows on `out`."
    import httpx
    rng = random.Random(seed)
    plan = [k for k, w in MIX for _ in range(w)]
    rng.shuffle(plan)
    rows = []
    with httpx.Client(base_url=url, headers={'Authorization': f'Bearer {token}'}, timeout=60) as c:
        deadline = time.time() + seconds
        for kind in itertools.cycle(plan):
            if time.time() >= deadline: break
            with budget.get_lock():
                if budget.value <= 0: break
                budget.value -= 1
            start, t0 = time.time(), time.perf_counter()
            try: ok, why = _request(c, kind, small_rows, rng)
            except Exception as e: ok, why = False, f'{type(e).__name__}: {e}'
            rows.append((kind, time.perf_counter() - t0, ok, '' if ok else why, start, time.time()))
    out.put(rows)

def stream_worker(url:str, token:str, big_rows:int, seconds:float, reads:int, out):
    "Read the `big` table through the Python client, batch by batch, for `seconds` (from when this process is ready) or `reads` reads; put (seconds, rows, largest batch, start, end) rows on `out`."
    from leptonhub.platform.hub import Hub
    rows = []
    with Hub.connect(url, token, timeout=300) as hub:
        deadline = time.time() + seconds
        for _ in range(reads):
            if time.time() >= deadline: break
            start, t0, n, big = time.time(), time.perf_counter(), 0, 0
            try:
                for b in hub.iter_batches('big'): n, big = n + b.num_rows, max(big, b.num_rows)
            except Exception: n = -1
            rows.append((time.perf_counter() - t0, n, big, start, time.time()))
    out.put(rows)

def run_workers(target, args_of, n:int, timeout:float) -> list:
    "Run `n` processes of `target(*args_of(i), queue)`; gather what each puts on the queue (within `timeout` seconds)."
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_of(i), q), daemon=True) for i in range(n)]
    for p in procs: p.start()
    got = []
    for _ in procs:
        try: got += q.get(timeout=timeout)
        except Exception: break
    for p in procs:
        p.join(10)
        if p.is_alive(): p.kill()
    return got, [p.exitcode for p in procs]

def window(rows:list) -> float:
    "Seconds from the first row's start to the last row's end (start and end are the last two fields)."
    return max(r[-1] for r in rows) - min(r[-2] for r in rows) if rows else 0.0

def latency(rows:list, seconds:float) -> dict:
    "Count, errors, throughput over `seconds` and p50/p99/max latency (ms) of (kind, seconds, ok, why, start, end) rows."
    s = np.array([r[1] for r in rows]) * 1000
    return {'requests': len(rows), 'errors': sum(not r[2] for r in rows), 'per_s': round(len(rows) / seconds, 1),
            'p50_ms': round(float(np.percentile(s, 50)), 2), 'p99_ms': round(float(np.percentile(s, 99)), 2), 'max_ms': round(float(s.max()), 2)}

class RSS:
    "Samples a process's resident memory ten times a second in a thread, from /proc (psutil)."
    def __init__(self, pid:int, every:float=0.1):
        import psutil
        self.proc, self.every, self.samples, self.stop = psutil.Process(pid), every, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
    def now(self) -> int: return self.proc.memory_info().rss
    def _run(self):
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), self.now()))
            time.sleep(self.every)
    def __enter__(self): self.thread.start(); return self
    def __exit__(self, *exc): self.stop.set(); self.thread.join(5)

MIB = 2**20

def run(seconds:float=30, workers:int=4, requests:int=50_000, small_rows:int=10_000, big_rows:int=2_000_000, stream_workers:int=2,
        stream_reads:int=1000, rss_bound_mib:float=128, work:Path|None=None) -> tuple[dict, list[str]]:
    "Both phases against a fresh hub; (the report, the failed checks)."
    work = Path(work or tempfile.mkdtemp(prefix='leptonhub-load-'))
    load_start = os.getloadavg()
    token, publish_s = make_hub(work/'hub', small_rows, big_rows)
    proc, url = start_server(work/'hub')
    problems, report = [], {}
    try:
        assert url.startswith(f'http://{HOST}:')
        budget = mp.get_context('spawn').Value('l', requests)
        rows, codes = run_workers(mixed_worker, lambda i: (url, token, small_rows, seconds, budget, i), workers, seconds + 120)
        took = window(rows)
        kinds = sorted({r[0] for r in rows})
        report['mixed'] = {'workers': workers, 'seconds': round(took, 2), 'total': latency(rows, took),
                           'by_kind': {k: latency([r for r in rows if r[0] == k], took) for k in kinds},
                           'failures': sorted({r[3] for r in rows if not r[2]})[:10], 'worker_exit_codes': codes}
        if not rows: problems.append('the mixed phase sent no request')
        if n := report['mixed']['total']['errors'] if rows else 0: problems.append(f'{n} of {len(rows)} mixed requests failed: {report["mixed"]["failures"]}')
        if big_rows:
            with RSS(proc.pid) as rss:
                before = rss.now()
                first, _ = run_workers(stream_worker, lambda i: (url, token, big_rows, 600, 1), 1, 900)
                time.sleep(1)
                warm, mark = rss.now(), time.monotonic()
                streams, scodes = run_workers(stream_worker, lambda i: (url, token, big_rows, seconds, stream_reads), stream_workers, seconds + 600)
                took2 = window(streams)
            during = [r for t, r in rss.samples if t >= mark]
            peak = max(during + [warm])
            ok_reads = [s for s in streams if s[1] == big_rows]
            report['streaming'] = {'rows': big_rows, 'workers': stream_workers, 'seconds': round(took2, 2), 'reads': len(streams), 'failed_reads': len(streams) - len(ok_reads),
                                   'first_read_s': round(first[0][0], 2) if first else None, 'first_read_rows': first[0][1] if first else None,
                                   'read_s_p50': round(float(np.median([s[0] for s in streams])), 2) if streams else None,
                                   'rows_per_s': round(sum(s[1] for s in ok_reads) / took2) if ok_reads else 0, 'largest_batch_rows': max((s[2] for s in streams), default=0),
                                   'worker_exit_codes': scodes}
            report['server_rss_mib'] = {'before_large_reads': round(before / MIB, 1), 'after_first_large_read': round(warm / MIB, 1),
                                        'peak_while_streaming': round(peak / MIB, 1), 'growth_while_streaming': round((peak - warm) / MIB, 1),
                                        'end_of_streaming': round(during[-1] / MIB, 1) if during else None, 'bound': rss_bound_mib, 'samples': len(during)}
            if not first or first[0][1] != big_rows: problems.append(f'the first large read returned {first[0][1] if first else "nothing"}, not {big_rows} rows')
            if not streams or len(ok_reads) < len(streams): problems.append(f'{len(streams) - len(ok_reads)} of {len(streams)} large reads were incomplete')
            if (peak - warm) / MIB > rss_bound_mib: problems.append(f'server RSS grew by {(peak - warm) / MIB:.0f} MiB while streaming (bound {rss_bound_mib} MiB)')
    finally:
        report['server_exit_code'] = stop_server(proc)
    report |= {'publish_s': round(publish_s, 2), 'small_rows': small_rows, 'host': HOST, 'requests_budget': requests, 'seconds_budget': seconds,
               'mix': dict(MIX), 'load_average': {'start': [round(x, 2) for x in load_start], 'end': [round(x, 2) for x in os.getloadavg()]},
               'machine': {'python': platform.python_version(), 'cpus': os.cpu_count()}}
    return report, problems

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seconds', type=float, default=30, help='length of each phase')
    ap.add_argument('--workers', type=int, default=4, help='load-generating processes in the mixed phase')
    ap.add_argument('--requests', type=int, default=50_000, help='most requests in the mixed phase')
    ap.add_argument('--small-rows', type=int, default=10_000)
    ap.add_argument('--big-rows', type=int, default=2_000_000, help='rows of the table streamed in phase 2 (0: no phase 2)')
    ap.add_argument('--stream-workers', type=int, default=2)
    ap.add_argument('--rss-bound-mib', type=float, default=128, help='largest allowed growth of the server RSS while streaming')
    a = ap.parse_args()
    report, problems = run(a.seconds, a.workers, a.requests, a.small_rows, a.big_rows, a.stream_workers, rss_bound_mib=a.rss_bound_mib)
    m = report['mixed']
    print(f"mixed: {m['total']['requests']} requests in {m['seconds']} s from {m['workers']} processes, {m['total']['per_s']}/s, {m['total']['errors']} errors")
    for k, v in m['by_kind'].items(): print(f"  {k:15s} {v['requests']:6d}  {v['per_s']:7.1f}/s  p50 {v['p50_ms']:7.1f} ms  p99 {v['p99_ms']:7.1f} ms")
    if 'streaming' in report:
        s, r = report['streaming'], report['server_rss_mib']
        print(f"streaming: {s['reads']} reads of {s['rows']:,} rows by {s['workers']} processes in {s['seconds']} s, {s['rows_per_s']:,} rows/s; first read {s['first_read_s']} s")
        print(f"server RSS: {r['before_large_reads']} MiB before, {r['after_first_large_read']} after the first large read, peak {r['peak_while_streaming']} while streaming (+{r['growth_while_streaming']}, bound {r['bound']})")
    return finish('load', report, problems)

if __name__ == '__main__': sys.exit(main())
