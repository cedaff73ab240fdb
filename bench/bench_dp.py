"""Benchmark the differentially private mean of `leptonhub.privacy.dp` against OpenDP: 10^6 floats in [0, 1], ε = 1.

Run: `.venv/bin/python bench/bench_dp.py [--n 1000000] [--repeat 10000] [--opendp-repeat 1000] [--opendp-python PATH]`.
leptonhub and OpenDP answer the same query on the same data, in rounds that alternate between them; every answer's time and
absolute error are recorded. OpenDP runs in this process if it imports here, else in a subprocess of `--opendp-python`
(default `$OPENDP_PYTHON`, else `/tmp/opendp-venv/bin/python`); without it, leptonhub is still measured and reported.
Results go to `bench/results/dp.json`.
"""
from __future__ import annotations
from results_io import finish
import argparse, json, math, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd

SEED = 20260501
ERROR_TOL = 0.05 # leptonhub's median |error| must be within 5 % of theory
TIME_TARGET = 1.0 # leptonhub time per query / OpenDP's
DEFAULT_OPENDP = '/tmp/opendp-venv/bin/python'

# ---------------------------------------------------------------- OpenDP, in this process or in a subprocess

OPENDP_CODE = r'''
import json, sys, time
import numpy as np
import opendp.prelude as dp
from importlib.metadata import version
dp.enable_features("contrib")

def measurement(n, epsilon):
    "OpenDP's mean of n floats in [0, 1] (size known) with Laplace noise: ε-DP for one changed record (symmetric distance 2)."
    space = dp.vector_domain(dp.atom_domain(bounds=(0.0, 1.0)), size=n), dp.symmetric_distance()
    make = lambda s: space >> dp.t.then_mean() >> dp.m.then_laplace(scale=s)
    scale = dp.binary_search_param(make, d_in=2, d_out=epsilon)
    return make(scale), scale

def run(x, truth, k, meas):
    "k answers: their times (s) and absolute errors."
    times, errors = [], []
    for _ in range(k):
        t0 = time.perf_counter(); v = meas(x); times.append(time.perf_counter() - t0)
        errors.append(abs(v - truth))
    return times, errors

if __name__ == "__main__":
    path, truth, k, epsilon = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    x = np.load(path)
    meas, scale = measurement(len(x), epsilon)
    meas(x)                                                          # warm up
    times, errors = run(x, truth, k, meas)
    print(json.dumps({"times": times, "errors": errors, "scale": scale, "version": version("opendp")}))
'''

class OpenDP:
    "OpenDP's DP mean, run here if `opendp` imports, else through `python`; `available` says whether it runs at all."
    def __init__(self, x:np.ndarray, truth:float, epsilon:float, python:str|None):
        self.x, self.truth, self.epsilon, self.python, self.local, self.why = x, truth, epsilon, python, None, ''
        try:
            ns = {'__name__': 'opendp_bench'}
            exec(OPENDP_CODE, ns)
            self.local = ns
            self.meas, self.scale = ns['measurement'](len(x), epsilon)
            self.version = ns['version']('opendp')
        except ImportError:
            if not python or not Path(python).exists(): self.why = f'opendp does not import here and {python or "no --opendp-python"} does not exist'
            else:
                self.tmp = tempfile.TemporaryDirectory(prefix='bench_dp_')
                self.path = Path(self.tmp.name)/'x.npy'
                np.save(self.path, x)

    @property
    def available(self) -> bool: return not self.why

    def run(self, k:int) -> tuple[list[float], list[float]]:
        "k OpenDP answers: their times and absolute errors."
        if self.local is not None: return self.local['run'](self.x, self.truth, k, self.meas)
        out = subprocess.run([self.python, '-c', OPENDP_CODE, str(self.path), repr(self.truth), str(k), repr(self.epsilon)],
                             capture_output=True, text=True, check=False)
        if out.returncode: raise RuntimeError(f'OpenDP subprocess failed: {out.stderr.strip()[-500:]}')
        r = json.loads(out.stdout.strip().splitlines()[-1])
        self.scale, self.version = r['scale'], r['version']
        return r['times'], r['errors']

# ---------------------------------------------------------------- leptonhub

def run_leptonhub(df:pd.DataFrame, truth:float, k:int, epsilon:float, public_n:bool) -> tuple[list[float], list[float], float]:
    "k leptonhub answers with the secure generator: their times, absolute errors, and the noise scale of the mean."
    from leptonhub.privacy.dp import dp_query
    times, errors = [], []
    for _ in range(k):
        t0 = time.perf_counter()
        r = dp_query(df, 'mean', 'x', epsilon=epsilon, bounds=(0.0, 1.0), public_n=public_n)
        times.append(time.perf_counter() - t0)
        errors.append(abs(r.value - truth))
    return times, errors, r.scale

# ---------------------------------------------------------------- measuring and reporting

def median_ci(values:list[float]) -> tuple[float, float, float]:
    "The median and a 95 % confidence interval for it (order statistics of the binomial)."
    v, m = np.sort(values), len(values)
    half = 1.96 * math.sqrt(m) / 2
    return float(np.median(v)), float(v[max(0, int(m / 2 - half))]), float(v[min(m - 1, int(math.ceil(m / 2 + half)))])

def summary(times:list[float], errors:list[float], theory:float) -> dict:
    "Median time per query, median |error| with its 95 % interval, and the error over theory."
    med, lo, hi = median_ci(errors)
    return {'queries': len(times), 'time_ms': 1e3 * float(np.median(times)), 'time_ms_p90': 1e3 * float(np.percentile(times, 90)),
            'median_abs_error': med, 'median_abs_error_ci95': [lo, hi], 'error_over_theory': med / theory}

def measure(n:int, epsilon:float, repeat:int, opendp_repeat:int, rounds:int, opendp_python:str|None) -> dict:
    "Alternate leptonhub and OpenDP over `rounds` rounds; return the summaries."
    x = np.random.default_rng(SEED).random(n)
    truth = math.fsum(x) / n
    df = pd.DataFrame({'x': x})
    b = 1.0 / (n * epsilon)                                           # Laplace scale of the mean, sensitivity 1/n
    theory = b * math.log(2)                                          # median of |Laplace(b)|
    odp = OpenDP(x, truth, epsilon, opendp_python)
    run_leptonhub(df, truth, 3, epsilon, True)                        # warm up (imports, caches)
    ours, ours_private, theirs = ([], []), ([], []), ([], [])
    share = lambda total, r: total * (r + 1) // rounds - total * r // rounds     # `total` split over the rounds
    for r in range(rounds):
        t, e, scale = run_leptonhub(df, truth, share(repeat, r), epsilon, True)
        ours[0].extend(t); ours[1].extend(e)
        t, e, _ = run_leptonhub(df, truth, max(1, share(repeat // 5, r)), epsilon, False)
        ours_private[0].extend(t); ours_private[1].extend(e)
        if odp.available:
            t, e = odp.run(share(opendp_repeat, r))
            theirs[0].extend(t); theirs[1].extend(e)
        print(f'round {r + 1}/{rounds} done', file=sys.stderr, flush=True)
    res = {'n': n, 'epsilon': epsilon, 'truth': truth, 'theory': {'laplace_scale': b, 'median_abs_error': theory},
           'leptonhub': {**summary(*ours, theory), 'scale': scale},
           'leptonhub_private_n': summary(*ours_private, theory), 'opendp': None, 'opendp_missing': odp.why or None}
    if odp.available: res['opendp'] = {**summary(*theirs, theory), 'scale': odp.scale, 'version': odp.version}
    return res

def table(res:dict) -> str:
    "The results as a small text table."
    rows = [('', 'queries', 'ms/query (median)', 'median |error|', '95 % interval', '/ theory')]
    def row(label, s):
        lo, hi = s['median_abs_error_ci95']
        rows.append((label, str(s['queries']), f"{s['time_ms']:.2f}", f"{s['median_abs_error']:.3g}", f'{lo:.3g}–{hi:.3g}', f"{s['error_over_theory']:.3f}"))
    row('leptonhub dp_query mean, public n (discrete Laplace)', res['leptonhub'])
    row('  (ref.) leptonhub, private n: noisy sum / noisy count', res['leptonhub_private_n'])
    if res['opendp']: row(f"OpenDP {res['opendp']['version']} then_mean >> then_laplace", res['opendp'])
    rows.append(('theory: Laplace b = 1/(n ε), median |error| = b ln 2', '', '', f"{res['theory']['median_abs_error']:.3g}", '', '1'))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows)

def checks(res:dict) -> list[str]:
    "The targets that are missed, and any answer that is not what it should be."
    problems, ours = [], res['leptonhub']
    if abs(ours['error_over_theory'] - 1) > ERROR_TOL:
        problems.append(f"leptonhub's median |error| is {ours['error_over_theory']:.3f} × theory, not within {ERROR_TOL:.0%}")
    if not math.isclose(ours['scale'], res['theory']['laplace_scale'], rel_tol=1e-8):
        problems.append(f"leptonhub's noise scale {ours['scale']:.6g} is not b = 1/(n ε) = {res['theory']['laplace_scale']:.6g}")
    if res['opendp'] and res['time_ratio'] > TIME_TARGET:
        problems.append(f"leptonhub takes {res['time_ratio']:.2f} × OpenDP's time per query, above {TIME_TARGET:g}")
    return problems

def cpu() -> str:
    "The CPU's model name where the system says it."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()

def main(a:argparse.Namespace) -> int:
    "Measure, print and save; non-zero exit if a target is missed."
    print(f'DP mean of {a.n:,} floats in [0, 1], ε = {a.epsilon:g}: {a.repeat} leptonhub answers, {a.opendp_repeat} OpenDP answers, {a.rounds} rounds', flush=True)
    res = measure(a.n, a.epsilon, a.repeat, a.opendp_repeat, a.rounds, a.opendp_python)
    res['time_ratio'] = res['leptonhub']['time_ms'] / res['opendp']['time_ms'] if res['opendp'] else None
    print(table(res))
    if res['opendp']: print(f"time leptonhub / OpenDP: {res['time_ratio']:.2f} (target ≤ {TIME_TARGET:g}); OpenDP's Laplace scale {res['opendp']['scale']:.10g} (ours {res['leptonhub']['scale']:.10g})")
    else: print(f"OpenDP not measured: {res['opendp_missing']}; install it (`python -m venv {Path(DEFAULT_OPENDP).parent.parent} && {DEFAULT_OPENDP.replace('python', 'pip')} install opendp numpy`) for the time target")
    print(f"error leptonhub / theory: {res['leptonhub']['error_over_theory']:.3f} (target within {ERROR_TOL:.0%})")
    problems = checks(res)
    report = {**res, 'repeat': a.repeat, 'opendp_repeat': a.opendp_repeat, 'rounds': a.rounds, 'error_tolerance': ERROR_TOL,
              'time_target': TIME_TARGET, 'meets_targets': not problems, 'python': platform.python_version(), 'numpy': np.__version__,
              'pandas': pd.__version__, 'machine': platform.machine(), 'cpu': cpu(), 'cpus': os.cpu_count()}
    return finish('dp', report, problems)

def parse(argv=None) -> argparse.Namespace:
    "Command-line arguments."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=1_000_000, help='number of values (default 1,000,000)')
    p.add_argument('--epsilon', type=float, default=1.0, help='ε of each query (default 1)')
    p.add_argument('--repeat', type=int, default=10_000, help="leptonhub answers (default 10,000: the median |error| is then known to ±1.4 %%; "
                                                               "with 1,000 its sampling error alone is ±4.6 %%, too close to the 5 %% target)")
    p.add_argument('--opendp-repeat', type=int, default=1_000, help='OpenDP answers (default 1,000)')
    p.add_argument('--rounds', type=int, default=3, help='rounds alternating leptonhub and OpenDP (default 3)')
    p.add_argument('--opendp-python', default=os.environ.get('OPENDP_PYTHON', DEFAULT_OPENDP), help='a Python with opendp installed, used if opendp does not import here')
    a = p.parse_args(argv)
    if a.n < 1 or a.repeat < a.rounds or a.opendp_repeat < a.rounds or a.rounds < 1 or not a.epsilon > 0:
        p.error('--n, --rounds must be ≥ 1, --repeat and --opendp-repeat at least --rounds, --epsilon > 0')
    return a

if __name__ == '__main__':
    sys.exit(main(parse()))
