"""A disk that fills up or refuses writes: a failing layer under the hub's own file writes (blobs, keyring), and a
real small tmpfs where this machine lets us mount one (then SQLite's writes fail for real too)."""
from __future__ import annotations
import builtins, errno, os, shutil, subprocess, tempfile, types
from contextlib import contextmanager
from pathlib import Path

import leptonhub.platform.storage as storage
import leptonhub.privacy.crypto as crypto

class Disk:
    "How many more bytes the hub's file writes may put on disk before the next write fails with `error`."
    def __init__(self, free:int, error:int=errno.ENOSPC):
        self.free, self.error, self.failures = free, error, 0

    def take(self, n:int) -> int:
        "Bytes of a write of `n` that fit; raise `OSError(error)` when none of a write fits (or the layer refuses all writes)."
        if self.error != errno.ENOSPC or self.free <= 0:
            self.failures += 1
            raise OSError(self.error, os.strerror(self.error))
        fit = min(n, self.free)
        self.free -= fit
        return fit

class _File:
    "A binary file whose writes go through a `Disk`: a write that does not fit is cut short, as on a full disk."
    def __init__(self, f, disk:Disk): self.f, self.disk = f, disk
    def write(self, data) -> int:
        fit = self.disk.take(len(data))
        self.f.write(data[:fit])
        if fit < len(data):
            self.disk.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fit
    def __getattr__(self, name): return getattr(self.f, name)
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()

@contextmanager
def failing_disk(disk:Disk):
    "Route the hub's blob writes (`storage`) and keyring writes (`crypto`) through `disk` while the block lasts."
    real_open = builtins.open
    def open_(path, mode='r', *a, **k):
        if disk.error != errno.ENOSPC and any(c in mode for c in 'wax+'): disk.take(0)   # refused before anything is created
        f = real_open(path, mode, *a, **k)
        return _File(f, disk) if any(c in mode for c in 'wax+') else f
    def fdopen(fd, mode='r', *a, **k):
        f = os.fdopen(fd, mode, *a, **k)
        return _File(f, disk) if any(c in mode for c in 'wax+') else f
    def os_open(path, flags, mode=0o777, *a, **k):
        if disk.error != errno.ENOSPC and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT): disk.take(0)
        return os.open(path, flags, mode, *a, **k)
    fake_os = types.SimpleNamespace(**{**vars(os), 'fdopen': fdopen, 'open': os_open})
    storage.open, real_os = open_, crypto.os
    crypto.os = fake_os
    try: yield disk
    finally:
        del storage.open
        crypto.os = real_os

@contextmanager
def small_tmpfs(size:str='2m'):
    "Yield a folder on a fresh tmpfs of `size` (root only, where mounting is allowed), or None where it cannot be mounted."
    where = Path(tempfile.mkdtemp(prefix='leptonhub-tmpfs-'))
    try:
        mounted = os.geteuid() == 0 and shutil.which('mount') and subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0700', 'tmpfs', str(where)], capture_output=True).returncode == 0
    except OSError: mounted = False
    try: yield where if mounted else None
    finally:
        if mounted: subprocess.run(['umount', '-l', str(where)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)

def remount(where:Path, *options:str) -> bool:
    "Remount the tmpfs at `where` with `options` (e.g. `ro`); True if it worked."
    return subprocess.run(['mount', '-o', ','.join(('remount',) + options), str(where)], capture_output=True).returncode == 0

def fill(where:Path, name:str='filler') -> Path:
    "Write zeros to `where/name` until the file system is full."
    path, block = Path(where)/name, b'\0' * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True: os.write(fd, block)
    except OSError as e:
        if e.errno != errno.ENOSPC: raise
    finally: os.close(fd)
    return path

# ---------------------------------------------------------------------------------------------- many faults

def digests(hub) -> dict:
    "The digest of every version the hub holds, each read whole (an `AssertionError` names one that is not)."
    from faults.crash import whole
    out = {}
    for name in hub.datasets()['name']:
        for v in hub.versions(name)['version']:
            df = hub.read(name, version=v)
            assert whole(df), f'{name} v{v} is not whole'
            out[(name, v)] = df['dig'].iloc[0]
    return out

ERRORS = {errno.ENOSPC: 'disk full', errno.EACCES: 'permission denied', errno.EROFS: 'read-only'}

def disk_campaign(root:str|Path, # a scratch folder
                  runs:int, # how many writes to fail
                  seed:int=0,
                  progress=None, # called with (run, faults, losses) after each run
                 ) -> dict:
    "Fail `runs` publishes and key rotations at random byte offsets (full disk) or at once (permission, read-only); check nothing changed."
    import random, time
    from collections import Counter
    from leptonhub.platform.hub import Hub
    from faults.crash import records, debris
    rng, t0 = random.Random(seed), time.perf_counter()
    home = Path(root)/'hub'
    hub = Hub.init(home)
    hub.publish('alpha', records(rng, 200))
    faults, done, problems = Counter(), Counter(), []
    for run in range(runs):
        op = rng.choice(['publish', 'publish', 'rotate'])
        error = rng.choice([errno.ENOSPC, errno.ENOSPC, errno.EACCES, errno.EROFS])
        before, keys = digests(hub), set(hub.keyring.masters)
        df, ok = records(rng, rng.randint(20, 2000)), False
        try:
            with failing_disk(Disk(rng.randint(0, 60_000 if op == 'publish' else 500) if error == errno.ENOSPC else 0, error)):
                hub.publish('alpha', df) if op == 'publish' else hub.rotate_keys()
        except OSError as e:
            faults[f'{op}: {ERRORS[error]}'] += 1
            said = 'nothing was published' if op == 'publish' else 'the keyring file is unchanged'
            if e.errno != error or said not in str(e): problems.append(f'run {run}: {op} failed with {e!r}, not a clear {ERRORS[error]} error')
            if op == 'publish' and hub.keyring.masters.keys() != keys: problems.append(f'run {run}: a failed publish changed the keyring')
        else: done[op], ok = done[op] + 1, True
        try:
            fresh = Hub(home)
            if fresh.keyring.masters != hub.keyring.masters: problems.append(f'run {run}: the keyring in memory is not the one on disk')
            after = digests(fresh)
            fresh.catalog.dispose()
            grown = {k: v for k, v in after.items() if k not in before}
            if {k: after.get(k) for k in before} != before: problems.append(f'run {run}: a version changed or vanished')
            if len(grown) != int(ok and op == 'publish'): problems.append(f'run {run}: {len(grown)} new versions after a {"completed" if ok else "failed"} {op}')
            if left := debris(home): problems.append(f'run {run}: temporary files left: {[p.name for p in left]}')
            if not (v := hub.verify_audit()): problems.append(f'run {run}: audit {v}')
        except AssertionError as e: problems.append(f'run {run}: {e}')
        if progress: progress(run + 1, sum(faults.values()), len(problems))
    hub.catalog.dispose()
    return {'runs': runs, 'faults': sum(faults.values()), 'faults_by_kind': dict(sorted(faults.items())),
            'completed_despite_the_fault_layer': dict(done), 'losses': len(problems), 'problems': problems[:50],
            'seconds': round(time.perf_counter() - t0, 1)}
