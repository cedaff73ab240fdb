"""The long fault run behind `make stress`: processes killed with SIGKILL mid-write, writes failed as on a full or
read-only disk, and several processes at once on one catalog — each followed by a check that nothing acknowledged was
lost, nothing half-written is visible, the audit chain verifies and no plaintext reached the disk.

Run: `.venv/bin/python bench/stress_crash.py [--runs 200] [--disk-runs 100] [--concurrency-runs 5] [--seed 0]`.

- **crash** (`--runs`): a forked child publishes, grants, revokes, rotates keys and reads, journalling each call
  before and after, and is killed with SIGKILL at a random moment or at a named point inside the hub (a blob half
  written, a blob in place but not catalogued, a keyring saved but not renamed, mid-rotation, inside an audit append,
  just before or after a commit). After every kill the hub is reopened and checked (see `tests/faults/crash.py`).
- **disk** (`--disk-runs`): a publish or a key rotation whose file writes fail after a random number of bytes
  (ENOSPC) or at once (EACCES, EROFS); the error must name the fault and nothing may change (`tests/faults/disk.py`).
- **concurrency** (`--concurrency-runs`): three publishers, two readers, two key rotators and a granter at once on
  SQLite in WAL mode; no lost update, gapless version numbers, no torn read, no hang (`tests/faults/concurrency.py`).

Results go to `bench/results/stress_crash.json`, `stress_disk.json` and `stress_concurrency.json`; the exit code is 1
if anything was lost. Every scratch hub lives in a temporary folder that is deleted afterwards.
"""
from __future__ import annotations
from results_io import finish
import argparse, platform, sys, tempfile, time
from pathlib import Path
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tests'))   # the fault harnesses live beside the tests
from faults.crash import campaign
from faults.disk import disk_campaign
from faults.concurrency import run_concurrently
from leptonhub.platform.hub import Hub

def _bar(total:int, desc:str):
    "A progress bar and the callback that moves it."
    bar = tqdm(total=total, desc=desc, unit='run')
    def moved(done:int, faults:int, losses:int):
        bar.n = done
        bar.set_postfix(faults=faults, losses=losses, refresh=False)
        bar.refresh()
    return bar, moved

def crash(runs:int, seed:int, per_hub:int) -> dict:
    bar, moved = _bar(runs, 'SIGKILL')
    with tempfile.TemporaryDirectory(prefix='leptonhub-stress-') as d: report = campaign(d, runs, seed=seed, per_hub=per_hub, progress=moved)
    bar.close()
    return report

def disk(runs:int, seed:int) -> dict:
    bar, moved = _bar(runs, 'disk faults')
    with tempfile.TemporaryDirectory(prefix='leptonhub-stress-') as d: report = disk_campaign(d, runs, seed=seed, progress=moved)
    bar.close()
    return report

def concurrency(runs:int) -> dict:
    rounds, t0 = [], time.perf_counter()
    for r in tqdm(range(runs), desc='concurrency', unit='round'):
        with tempfile.TemporaryDirectory(prefix='leptonhub-stress-') as d:
            home = Path(d)/'hub'
            Hub.init(home).catalog.dispose()
            bad, n = run_concurrently(home)
            rounds.append({**n, 'problems': bad})
    total = lambda k: sum(r[k] for r in rounds)
    return {'rounds': runs, 'processes_per_round': rounds[0]['processes'] if rounds else 0,
            'publishes_acknowledged': total('publishes acknowledged'), 'reads': total('reads'),
            'grants_acknowledged': total('grants acknowledged'), 'revokes_acknowledged': total('revokes acknowledged'),
            'rotations_acknowledged': total('rotations acknowledged'), 'losses': sum(len(r['problems']) for r in rounds),
            'problems': [p for r in rounds for p in r['problems']][:50], 'seconds': round(time.perf_counter() - t0, 1)}

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--runs', type=int, default=200, help='processes to kill with SIGKILL')
    p.add_argument('--per-hub', type=int, default=10, help='kills against one hub before a fresh one is made')
    p.add_argument('--disk-runs', type=int, default=100, help='writes to fail as on a full or read-only disk')
    p.add_argument('--concurrency-runs', type=int, default=5, help='rounds of several processes at once')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    machine = {'python': platform.python_version(), 'platform': platform.platform(), 'seed': a.seed}
    codes = []
    for name, runs, run in (('stress_crash', a.runs, lambda: crash(a.runs, a.seed, a.per_hub)),
                            ('stress_disk', a.disk_runs, lambda: disk(a.disk_runs, a.seed)),
                            ('stress_concurrency', a.concurrency_runs, lambda: concurrency(a.concurrency_runs))):
        if runs <= 0: continue
        report = {**run(), 'machine': machine}
        print(f"{name}: {report.get('runs', report.get('rounds'))} runs, losses {report['losses']}")
        codes.append(finish(name, report, report['problems']))
    return max(codes, default=0)

if __name__ == '__main__': sys.exit(main())
