"""Benchmark `leptonhub.privacy.crypto.seal`/`open_sealed` against raw AES-256-GCM from `cryptography` on one random buffer.

Run: `.venv/bin/python bench/bench_crypto.py [--mib 256] [--repeat 3]`.
All methods run in this one process on the same buffer, interleaved round by round (best of `--repeat` each); every
round trip is checked byte for byte. Results go to `bench/results/crypto.json`.
"""
from __future__ import annotations
from results_io import save
import argparse, json, os, platform, sys, time
from pathlib import Path
import numpy as np
import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEED, BLOB_ID = 20260501, 'bench'
TARGET = 0.8 # leptonhub throughput / raw AES-GCM throughput
SWEEP_MIB = (1, 4, 16) # chunk sizes tried besides the default

# ---------------------------------------------------------------- the measured methods: each returns (seal_s, open_s, ok)

def clock(fn):
    "Run `fn()`; return (seconds, its result)."
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r

def run_leptonhub(buf:bytes, key:bytes, chunk:int) -> tuple[float, float, bool]:
    "leptonhub: `seal` in `chunk`-byte authenticated chunks, then `open_sealed`."
    from leptonhub.privacy.crypto import seal, open_sealed, TAG
    ts, sealed = clock(lambda: seal(buf, key, BLOB_ID, chunk))
    to, opened = clock(lambda: open_sealed(sealed, key, BLOB_ID))
    ok = opened == buf and len(sealed) == 8 + len(buf) + TAG * max(1, -(-len(buf) // chunk))
    return ts, to, ok

def run_raw(buf:bytes, key:bytes, nonce:bytes) -> tuple[float, float, bool]:
    "Baseline: one `AESGCM.encrypt` / `decrypt` call over the whole buffer (allocates its output, like `seal`)."
    aes = AESGCM(key)
    ts, ct = clock(lambda: aes.encrypt(nonce, buf, None))
    to, pt = clock(lambda: aes.decrypt(nonce, ct, None))
    return ts, to, pt == buf and len(ct) == len(buf) + 16

def run_raw_into(buf:bytes, key:bytes, nonce:bytes, out:bytearray, back:bytearray) -> tuple[float, float, bool]:
    "Stricter baseline: `encrypt_into` / `decrypt_into` over the whole buffer into buffers allocated outside the timing."
    aes = AESGCM(key)
    ts, _ = clock(lambda: aes.encrypt_into(nonce, buf, None, out))
    to, _ = clock(lambda: aes.decrypt_into(nonce, out, None, back))
    return ts, to, back == buf

def run_raw_into_fresh(buf:bytes, key:bytes, nonce:bytes) -> tuple[float, float, bool]:
    "For reference: `encrypt_into` / `decrypt_into` into `bytearray`s allocated inside the timing, as `seal` does."
    aes = AESGCM(key)
    ts, out = clock(lambda: (lambda o: (aes.encrypt_into(nonce, buf, None, o), o)[1])(bytearray(len(buf) + 16)))
    to, back = clock(lambda: (lambda b: (aes.decrypt_into(nonce, out, None, b), b)[1])(bytearray(len(buf))))
    return ts, to, back == buf

# ---------------------------------------------------------------- measuring

def summarise(times:list[tuple[float, float]], n:int) -> dict:
    "Best seal, open and seal+open times of the rounds, and their throughputs (GB/s, 1 GB = 1e9 bytes)."
    seal_s, open_s = min(t[0] for t in times), min(t[1] for t in times)
    both_s = min(t[0] + t[1] for t in times)
    return {'seal_s': seal_s, 'open_s': open_s, 'both_s': both_s,
            'seal_gbps': n / seal_s / 1e9, 'open_gbps': n / open_s / 1e9, 'both_gbps': 2 * n / both_s / 1e9,
            'rounds_s': [list(t) for t in times]}

def measure(mib:int, repeat:int) -> dict:
    "Time every method `repeat` times, interleaved; return the summaries and whether every round trip matched."
    from leptonhub.privacy.crypto import CHUNK
    n = mib << 20
    buf = np.random.default_rng(SEED).bytes(n)
    key, nonce = AESGCM.generate_key(256), os.urandom(12)
    out, back = bytearray(n + 16), bytearray(n)
    methods = {'leptonhub': lambda: run_leptonhub(buf, key, CHUNK),
               'raw': lambda: run_raw(buf, key, nonce),
               'raw_into': lambda: run_raw_into(buf, key, nonce, out, back),
               'raw_into_fresh': lambda: run_raw_into_fresh(buf, key, nonce),
               **{f'leptonhub_{m}mib': (lambda m=m: run_leptonhub(buf, key, m << 20)) for m in SWEEP_MIB}}
    times, bad = {k: [] for k in methods}, []
    for r in range(repeat):
        for name, fn in methods.items():
            ts, to, ok = fn()
            times[name].append((ts, to))
            if not ok: bad.append(f'{name} round {r}: the round trip did not give back the same bytes')
        print(f'round {r + 1}/{repeat} done', file=sys.stderr, flush=True)
    return {'bytes': n, 'chunk': CHUNK, 'methods': {k: summarise(v, n) for k, v in times.items()}, 'errors': bad}

def ratios(m:dict, base:str) -> dict:
    "Throughput of leptonhub (default chunk) over `base`'s, for seal, open and both (= base time / leptonhub time)."
    lh, b = m['leptonhub'], m[base]
    return {k: b[f'{k}_s'] / lh[f'{k}_s'] for k in ('seal', 'open', 'both')}

# ---------------------------------------------------------------- report

def table(res:dict) -> str:
    "The results as a small text table."
    m = res['methods']
    rows = [('', 'seal s', 'seal GB/s', 'open s', 'open GB/s', 'seal+open s', 'seal+open GB/s')]
    label = {'leptonhub': f"leptonhub seal/open_sealed, {res['chunk'] >> 20} MiB chunks (default)",
             'raw': 'raw AESGCM.encrypt/decrypt, whole buffer', 'raw_into': 'raw AESGCM.encrypt_into/decrypt_into, whole buffer',
             'raw_into_fresh': '  (ref.) raw *_into, output allocated in the timing',
             **{f'leptonhub_{k}mib': f'  leptonhub, {k} MiB chunks' for k in SWEEP_MIB}}
    for k in ('leptonhub', 'raw', 'raw_into', 'raw_into_fresh', *(f'leptonhub_{s}mib' for s in SWEEP_MIB)):
        v = m[k]
        rows.append((label[k], f"{v['seal_s']:.3f}", f"{v['seal_gbps']:.2f}", f"{v['open_s']:.3f}", f"{v['open_gbps']:.2f}",
                     f"{v['both_s']:.3f}", f"{v['both_gbps']:.2f}"))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    for base, what in (('raw', 'raw encrypt/decrypt'), ('raw_into', 'raw encrypt_into/decrypt_into'),
                       ('raw_into_fresh', 'raw *_into, fresh output')):
        r = res['ratios'][base]
        lines.append(f"throughput leptonhub / {what}: seal {r['seal']:.2f}, open {r['open']:.2f}, seal+open {r['both']:.2f}")
    r = res['ratios']['raw']
    verdict = 'meets' if min(r.values()) >= TARGET else 'MISSES'
    lines.append(f'target: >= {TARGET:g} x raw encrypt/decrypt for seal, open and both: {verdict} it')
    return '\n'.join(lines)

def cpu() -> str:
    "The CPU's model name where the system says it."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()

def main(mib:int, repeat:int) -> int:
    "Measure, print and save; non-zero exit if any round trip did not give back the same bytes."
    from cryptography.hazmat.backends.openssl.backend import backend
    print(f'{mib} MiB of random bytes, best of {repeat} (1 GB = 1e9 bytes)', flush=True)
    res = measure(mib, repeat)
    res['ratios'] = {b: ratios(res['methods'], b) for b in ('raw', 'raw_into', 'raw_into_fresh')}
    print(table(res))
    report = {'mib': mib, 'repeat': repeat, **res, 'target_ratio': TARGET, 'meets_target': min(res['ratios']['raw'].values()) >= TARGET,
              'python': platform.python_version(), 'cryptography': cryptography.__version__,
              'openssl': backend.openssl_version_text(), 'machine': platform.machine(), 'cpu': cpu(), 'cpus': os.cpu_count()}
    print(f"results: {save('crypto', report)}")
    for e in res['errors']: print(f'ROUND TRIP MISMATCH: {e}', file=sys.stderr)
    return 1 if res['errors'] else 0

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--mib', type=int, default=256, help='size of the random buffer in MiB (default 256; at most 2047)')
    p.add_argument('--repeat', type=int, default=3, help='rounds; the best time of each method counts (default 3)')
    a = p.parse_args(argv)
    if not 1 <= a.mib <= 2047: p.error('--mib must be in 1..2047 (one raw AES-GCM call takes less than 2 GiB)')
    if a.repeat < 1: p.error('--repeat must be at least 1')
    return a

if __name__ == '__main__':
    args = parse()
    sys.exit(main(args.mib, args.repeat))
