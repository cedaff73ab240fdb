"""Crash safety: a child process publishes, grants, revokes, rotates keys and reads (every call audited) until it is
killed with SIGKILL, at a random moment or at a named point inside the hub; then the hub is reopened and checked.

The child writes one JSON line to an acknowledgement file *before* each operation (`begin`) and one *after* the
call returned (`ack`), with what it wrote (the digest of every published table). The checks after a kill:

- the hub opens, and the audit chain verifies;
- every blob the catalog lists exists and decrypts; every version's table decodes whole (its rows carry the digest
  of the table, so a torn or mixed table is caught), version numbers run 1, 2, … without a gap;
- every acknowledged publish is there with the same digest; every version there was begun by the child (no phantom);
- every acknowledged grant exists (and still works unless a revoke of it was begun); every acknowledged revoke holds;
  every acknowledged key rotation's retired keys are gone from the keyring;
- every acknowledged operation has its audit entry;
- no file under the hub home holds the marker that only plaintext records contain;
- `Hub.gc` removes exactly the blob files no version refers to (left by a publish killed before its commit).
"""
from __future__ import annotations
import hashlib, json, os, random, secrets, signal, stat, time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
import pandas as pd, sqlalchemy as sa

from leptonhub.core import AccessDenied, LeptonError
from leptonhub.platform.catalog import Blob, Dataset, Grant, Version
from leptonhub.platform.hub import Hub, KEYRING_FILE
from leptonhub.platform.storage import bytes_frame, frame_bytes
from leptonhub.privacy.crypto import Envelope

MARKER = b'PLAINMARK' # every plaintext record holds it; nothing at rest may
PAYLOAD = ['rid', 'val', 'note']
ENV_KILL = 'LEPTONHUB_KILL_AT' # `point:nth` — the child kills itself at the nth call of a named point
DATASETS = ('alpha', 'beta')
CONSUMERS = ('c0', 'c1', 'c2')
# named kill points, with the largest `nth` worth drawing (the rotation's points come once or twice per rotation)
POINTS = {'blob.partial': 3, 'blob.placed': 3, 'keyring.tmp': 1, 'keyring.placed': 1, 'rewrap': 2, 'retire': 1,
          'audit.append': 8, 'commit.before': 8, 'commit.after': 8, 'ack.before': 6}
OPS = {'publish': 4, 'grant': 2, 'revoke': 2, 'rotate': 1, 'read': 3}

# ---------------------------------------------------------------------------------------------- the data

def digest(df:pd.DataFrame) -> str:
    "SHA-256 of the payload columns of `df`, row by row."
    return hashlib.sha256('\n'.join(df.rid + '\t' + df.val + '\t' + df.note).encode()).hexdigest()

def records(rng:random.Random, n:int) -> pd.DataFrame:
    "`n` distinct text records, each with the plaintext marker, and the table's digest in column `dig`."
    df = pd.DataFrame({'rid': [f'r{rng.getrandbits(40):010x}-{i}' for i in range(n)],
                       'val': [f'v{rng.randrange(10**6)}' for _ in range(n)],
                       'note': [f'{MARKER.decode()}-{rng.getrandbits(64):016x}' for _ in range(n)]})
    df['dig'] = digest(df)
    return df

def whole(df:pd.DataFrame) -> bool:
    "Does `df` carry one digest in every row, equal to the digest of its own payload?"
    return len(df) > 0 and df['dig'].nunique() == 1 and df['dig'].iloc[0] == digest(df[PAYLOAD].astype(str))

# ---------------------------------------------------------------------------------------------- kill points (child side)

def die():
    "SIGKILL this process: no cleanup handler, no `finally`, no flush runs."
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)

class KillPoints:
    "Count calls at named points; SIGKILL the process at the `nth` call of the armed point (`spec` is `point:nth`)."
    def __init__(self, spec:str|None):
        self.seen, (self.target, self.nth) = Counter(), ((spec.split(':')[0], int(spec.split(':')[1])) if spec else (None, 0))
        if self.target is not None and self.target not in POINTS: raise ValueError(f'unknown kill point {self.target!r}; known: {sorted(POINTS)}')

    def hit(self, name:str, last_words=None):
        "Count a call at `name`; if it is the armed one, run `last_words()` (a partial write, say) and die."
        self.seen[name] += 1
        if name == self.target and self.seen[name] == self.nth:
            if last_words: last_words()
            die()

def install(points:KillPoints):
    "Put `points` on the hub's write paths: blob writes, keyring saves, re-wrapping, retiring, audit appends, commits."
    import leptonhub.platform.storage as storage, leptonhub.privacy.crypto as crypto, leptonhub.platform.audit as audit
    from sqlalchemy import event
    from sqlalchemy.orm import Session
    real_write, real_atomic, real_rewrap, real_retire, real_append = storage._write_local, crypto.atomic_path, crypto.Keyring.rewrap, crypto.Keyring.retire, audit.append
    def partial(path, data):
        "Half the sealed blob in a temporary sibling, as a write cut short leaves it."
        with open(f'{path}.{secrets.token_hex(4)}.tmp', 'wb') as f: f.write(bytes(data[:len(data) // 2])); f.flush()
    def write_local(path, data, durable):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        points.hit('blob.partial', lambda: partial(path, data))
        real_write(path, data, durable)
        points.hit('blob.placed')
    @contextmanager
    def atomic(path, dir=False):
        with real_atomic(path, dir) as tmp:
            yield tmp
            points.hit('keyring.tmp')
        points.hit('keyring.placed')
    def rewrap(self, *a): points.hit('rewrap'); return real_rewrap(self, *a)
    def retire(self, *a): points.hit('retire'); return real_retire(self, *a)
    def append(*a, **k): points.hit('audit.append'); return real_append(*a, **k)
    storage._write_local, crypto.atomic_path, crypto.Keyring.rewrap, crypto.Keyring.retire, audit.append = write_local, atomic, rewrap, retire, append
    event.listen(Session, 'before_commit', lambda s: points.hit('commit.before'))
    event.listen(Session, 'after_commit', lambda s: points.hit('commit.after'))

# ---------------------------------------------------------------------------------------------- the child's workload

class Acks:
    "The child's journal: one JSON line per `begin` and per `ack`, each written with a single `write`."
    def __init__(self, path:str|Path): self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    def put(self, kind:str, op:str, **kw): os.write(self.fd, (json.dumps({'k': kind, 'op': op, **kw}) + '\n').encode())

def journal(path:str|Path) -> list[dict]:
    "The lines of an acknowledgement file; a last line cut short by the kill is dropped."
    path = Path(path)
    if not path.exists(): return []
    out = []
    for line in path.read_text().splitlines():
        try: out.append(json.loads(line))
        except ValueError: pass
    return out

def _live_grants(hub:Hub, name:str) -> list[dict]: return [g for g in hub.card(name)['grants'] if g['active']]

def workload(home:str|Path, # the hub
             acks:str|Path, # the acknowledgement file
             seed:int, # drives the choice of operations and data
             kill_at:str|None=None, # `point:nth`; `$LEPTONHUB_KILL_AT` if not given
             max_ops:int=10_000):
    "Run random hub operations, journalled in `acks`, until killed (or `max_ops` are done)."
    points = KillPoints(kill_at if kill_at is not None else os.environ.get(ENV_KILL))
    rng, log = random.Random(seed), Acks(acks)
    tokens = {e['principal']: e['token'] for e in journal(acks) if e['k'] == 'ack' and e['op'] == 'grant'}
    hub = Hub(home)
    install(points)   # after opening: the named points count the workload's own calls
    for _ in range(max_ops):
        op, name = rng.choices(list(OPS), list(OPS.values()))[0], rng.choice(DATASETS)
        published = set(hub.datasets()['name'])
        if op != 'publish' and name not in published: op = 'publish'
        if op == 'publish':
            df = records(rng, rng.randint(20, 400))
            log.put('begin', op, dataset=name, digest=df['dig'].iloc[0])
            r = hub.publish(name, df)
            points.hit('ack.before')
            log.put('ack', op, dataset=name, version=r['version'], rows=r['rows'], digest=df['dig'].iloc[0])
        elif op == 'grant':
            who = rng.choice(CONSUMERS)
            log.put('begin', op, dataset=name, principal=who)
            r = hub.grant(name, to=who, purpose='crash-safety check')
            tokens[who] = r['token']
            points.hit('ack.before')
            log.put('ack', op, dataset=name, principal=who, grant=r['grant'], token=r['token'])
        elif op == 'revoke':
            live = _live_grants(hub, name)
            if not live: continue
            who = rng.choice(live)['principal']
            ids = [g['id'] for g in live if g['principal'] == who]
            log.put('begin', op, dataset=name, principal=who, grants=ids)
            hub.revoke(name, who)
            points.hit('ack.before')
            log.put('ack', op, dataset=name, principal=who, grants=ids)
        elif op == 'rotate':
            log.put('begin', op)
            r = hub.rotate_keys()
            points.hit('ack.before')
            log.put('ack', op, key=r['key'], retired=r['retired'])
        elif op == 'read' and tokens:
            who = rng.choice(sorted(tokens))
            consumer = hub.as_principal(tokens[who])
            log.put('begin', op, dataset=name, principal=who)
            try: df = consumer.read(name)
            except AccessDenied:
                points.hit('ack.before')
                log.put('ack', 'denied', dataset=name, principal=who)
            else:
                points.hit('ack.before')
                log.put('ack', op, dataset=name, principal=who, rows=len(df), whole=whole(df))

# ---------------------------------------------------------------------------------------------- one run (parent side)

def crash_run(home:str|Path, acks:str|Path, seed:int, kill_at:str|None=None, delay:float|None=None, deadline:float=5.0) -> str:
    "Fork a child running `workload`; SIGKILL it after `delay` s, or let it kill itself at `kill_at` (else after `deadline` s); return how it died."
    pid = os.fork()
    if pid == 0:
        code = 0
        try: workload(home, acks, seed, kill_at)
        except BaseException as e:
            Acks(acks).put('error', type(e).__name__, error=str(e)[:500])
            code = 1
        finally: os._exit(code)
    t0, waited = time.monotonic(), None
    limit = delay if delay is not None else deadline
    while time.monotonic() - t0 < limit:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got: waited = status; break
        time.sleep(0.005)
    if waited is None:
        os.kill(pid, signal.SIGKILL)
        _, waited = os.waitpid(pid, 0)
        return 'random time' if delay is not None else f'after {deadline:g} s (point not reached)'
    if os.WIFSIGNALED(waited) and os.WTERMSIG(waited) == signal.SIGKILL: return kill_at or os.environ.get(ENV_KILL, 'unknown point')
    return f'exit {os.waitstatus_to_exitcode(waited)}'

# ---------------------------------------------------------------------------------------------- the checks (parent side)

def _files(home:Path): return [p for p in Path(home).rglob('*') if p.is_file()]

def debris(home:str|Path) -> list[Path]:
    "Temporary files left by writes cut short: blob and keyring siblings named `*.tmp`."
    return [p for p in _files(home) if p.name.endswith('.tmp')]

def plaintext_at_rest(home:str|Path) -> list[str]:
    "Files under `home` that hold the plaintext marker."
    return [str(p.relative_to(home)) for p in _files(home) if MARKER in p.read_bytes()]

def copies_with_retired_keys(home:str|Path, keyring_masters:set[str]) -> list[Path]:
    "Keyring temporaries that hold a master key the live keyring no longer holds."
    found = []
    for p in debris(home):
        if not p.name.startswith(f'.{KEYRING_FILE}.'): continue
        try: doc = json.loads(p.read_text())
        except ValueError: continue
        if any(k not in keyring_masters for k in (doc.get('keys') or {}).get('masters', {})): found.append(p)
    return found

class Checker:
    "Checks a hub after each kill against the journal of everything its children began and acknowledged."
    def __init__(self, home:str|Path, acks:str|Path):
        self.home, self.acks = Path(home), Path(acks)
        self.own_reads = Counter() # reads the checker itself made, per principal, to discount in the audit counts
        self.checked_grants = set()

    def __call__(self) -> tuple[list[str], dict]:
        "(problems, counts) for the hub as it is now."
        bad, n = [], Counter()
        try: hub = Hub(self.home)
        except LeptonError as e: return [f'the hub does not open: {e}'], n
        try:
            self.orphans = None
            try: self._check(hub, journal(self.acks), bad, n)
            except Exception as e: bad.append(f'the check itself failed: {type(e).__name__}: {e}')
            if self.orphans is None: return bad, n
            gone = set(hub.gc(min_age_s=0))   # the child is dead: no write is in progress
            if gone != self.orphans: bad.append(f'gc removed {sorted(gone)}, the orphans were {sorted(self.orphans)}')
            if left := debris(self.home): bad.append(f'gc left temporary files: {[p.name for p in left]}')
            n['orphans collected'] += len(gone)
        finally: hub.catalog.dispose()
        return bad, n

    def _check(self, hub:Hub, log:list[dict], bad:list, n:Counter):
        if not (v := hub.verify_audit()): bad.append(f'audit: {v}')
        acked = [e for e in log if e['k'] == 'ack']
        begun = [e for e in log if e['k'] == 'begin']
        bad += [f"child failed: {e['op']}: {e['error']}" for e in log if e['k'] == 'error']
        with hub.catalog.session() as s:
            blobs = {b.id: b for b in s.scalars(sa.select(Blob))}
            versions = s.execute(sa.select(Dataset.name, Version).join(Dataset, Version.dataset_id == Dataset.id)).all()
            grants = {g.id: g for g in s.scalars(sa.select(Grant))}
        # every catalogued blob exists and decrypts; every version decodes whole; numbers are gapless
        plain = {}
        for bid, b in blobs.items():
            try: plain[bid] = hub.store.read(bid, Envelope(b.kid, b.wrapped))
            except LeptonError as e: bad.append(f'blob {bid[:12]}… listed in the catalog: {type(e).__name__}: {e}')
        n['blobs checked'] += len(blobs)
        stored, numbers = {}, {}
        for name, v in versions:
            numbers.setdefault(name, []).append(v.number)
            if v.blob_id not in plain: bad.append(f'{name} v{v.number}: its blob is not readable'); continue
            df = bytes_frame(plain[v.blob_id])
            if len(df) != v.rows or list(df.columns) != v.columns or not whole(df): bad.append(f'{name} v{v.number} is not whole: {len(df)} rows of {v.rows}')
            else: stored[(name, v.number)] = df['dig'].iloc[0]
        n['versions checked'] += len(versions)
        for name, ns in numbers.items():
            if sorted(ns) != list(range(1, len(ns) + 1)): bad.append(f'{name}: version numbers {sorted(ns)} have a gap or a repeat')
        used = {v.blob_id for _, v in versions} | {v.quarantine_blob_id for _, v in versions if v.quarantine_blob_id}
        if unused := set(blobs) - used: bad.append(f'{len(unused)} catalogued blobs belong to no version')
        self.orphans = hub.store.ids() - used
        # nothing acknowledged is lost, nothing appears that was never begun
        pubs = [e for e in acked if e['op'] == 'publish']
        bad += [f"acknowledged {e['dataset']} v{e['version']} is {'missing' if (e['dataset'], e['version']) not in stored else 'different'}"
                for e in pubs if stored.get((e['dataset'], e['version'])) != e['digest']]
        started = {(e['dataset'], e['digest']) for e in begun if e['op'] == 'publish'}
        bad += [f'{name} v{num} was never published by anyone' for (name, num), d in stored.items() if (name, d) not in started]
        bad += [f"a read of {e['dataset']} by {e['principal']} saw a torn table" for e in acked if e['op'] == 'read' and not e['whole']]
        # grants and revokes hold; rotations retired their keys
        revoking = {}
        for i, e in enumerate(log):
            if e['k'] == 'begin' and e['op'] == 'revoke': revoking.setdefault((e['dataset'], e['principal']), []).append(i)
        for i, e in enumerate(log):
            if e['k'] != 'ack': continue
            if e['op'] == 'grant':
                g = grants.get(e['grant'])
                if g is None: bad.append(f"acknowledged grant {e['grant']} is missing"); continue
                if g.revoked_at is None and e['grant'] not in self.checked_grants and not any(j > i for j in revoking.get((e['dataset'], e['principal']), [])):
                    self.checked_grants.add(e['grant'])
                    try: ok = whole(hub.as_principal(e['token']).read(e['dataset'])); self.own_reads[e['principal']] += 1
                    except LeptonError as x: ok = x
                    if ok is not True: bad.append(f"acknowledged grant {e['grant']} does not read: {ok}")
            elif e['op'] == 'revoke':
                bad += [f"acknowledged revoke of grant {gid} did not hold" for gid in e['grants'] if grants.get(gid) is None or grants[gid].revoked_at is None]
            elif e['op'] == 'rotate':
                bad += [f'acknowledged rotation left retired key {k} in the keyring' for k in e['retired'] if k in hub.keyring.masters]
        # every acknowledged operation is in the audit log (read after the checker's own reads above)
        entries = hub.audit()
        ok = entries[entries.outcome == 'ok']
        published = set(zip(ok[ok.action == 'publish'].dataset, ok[ok.action == 'publish'].version.astype(int)))
        bad += [f"publish of {e['dataset']} v{e['version']} is not audited" for e in pubs if (e['dataset'], e['version']) not in published]
        details = entries.detail.map(lambda d: d or {})
        audited_grants = set(details[entries.action == 'grant'].map(lambda d: d.get('grant')))
        audited_revokes = {g for d in details[entries.action == 'revoke'] for g in d.get('grants', [])}
        audited_keys = set(details[entries.action == 'rotate_keys'].map(lambda d: d.get('new_key')))
        for e in acked:
            if e['op'] == 'grant' and e['grant'] not in audited_grants: bad.append(f"grant {e['grant']} is not audited")
            if e['op'] == 'revoke' and not set(e['grants']) <= audited_revokes: bad.append(f"revoke of {e['grants']} is not audited")
            if e['op'] == 'rotate' and e['key'] not in audited_keys: bad.append(f"rotation to {e['key']} is not audited")
        for outcome, op, own in (('ok', 'read', self.own_reads), ('denied', 'denied', Counter())):
            seen = Counter(entries[(entries.action == 'read') & (entries.outcome == outcome)].actor)
            want = Counter(e['principal'] for e in acked if e['op'] == op)
            bad += [f'{who}: {want[who]} acknowledged {op} reads, {seen[who] - own[who]} audited' for who in want if seen[who] - own[who] < want[who]]
        n.update(Counter(f'acknowledged {e["op"]}' for e in acked))
        # no plaintext at rest; the keyring stays owner-only; key material in temporaries is counted
        bad += [f'plaintext marker found in {p}' for p in plaintext_at_rest(self.home)]
        if (mode := stat.S_IMODE(os.stat(self.home/KEYRING_FILE).st_mode)) != 0o600: bad.append(f'keyring mode is {mode:o}')
        n['temporary files collected'] = len(debris(self.home))
        n['stale keyring copies with retired keys collected'] = len(copies_with_retired_keys(self.home, set(hub.keyring.masters)))

# ---------------------------------------------------------------------------------------------- many runs

def plan(rng:random.Random, p_random:float=0.4) -> tuple[str|None, float|None]:
    "One run's kill: (`point:nth`, None) or (None, a random delay in seconds)."
    if rng.random() < p_random: return None, rng.uniform(0.02, 1.2)
    point = rng.choice(sorted(POINTS))
    return f'{point}:{rng.randint(1, POINTS[point])}', None

def campaign(root:str|Path, # a scratch folder for the hubs and journals
             runs:int, # how many child processes to kill
             seed:int=0,
             per_hub:int=10, # runs against one hub before a fresh one is made
             progress=None, # called with (run, kills, losses) after each run
            ) -> dict:
    "Kill `runs` children at random points and times, checking the hub after each; return the tallies and every problem found."
    rng, root = random.Random(seed), Path(root)
    assert MARKER in frame_bytes(records(rng, 50)), 'the marker must show in plaintext Parquet, or searching for it proves nothing'
    how, counts, problems, t0 = Counter(), Counter(), [], time.perf_counter()
    for run in range(runs):
        if run % per_hub == 0:
            home, acks = root/f'hub{run // per_hub}', root/f'acks{run // per_hub}.jsonl'
            Hub.init(home).catalog.dispose()
            check = Checker(home, acks)
        kill_at, delay = plan(rng)
        died = crash_run(home, acks, rng.getrandbits(32), kill_at, delay)
        how[died.split(':')[0]] += 1
        if died.startswith('exit'): problems.append(f'run {run}: the child ended by itself ({died})')
        bad, n = check()
        counts.update({k: v for k, v in n.items() if not k.startswith('acknowledged')})
        if run % per_hub == per_hub - 1 or run == runs - 1: counts.update({k: v for k, v in n.items() if k.startswith('acknowledged')})
        problems += [f'run {run} ({died}): {b}' for b in bad]
        if progress: progress(run + 1, sum(v for k, v in how.items() if not k.startswith('exit')), len(problems))
    kills = sum(v for k, v in how.items() if not k.startswith('exit'))
    return {'runs': runs, 'kills': kills, 'kills_by_point': dict(sorted(how.items())), 'seconds': round(time.perf_counter() - t0, 1),
            'operations_acknowledged': sum(v for k, v in counts.items() if k.startswith('acknowledged')),
            'counts': dict(sorted(counts.items())), 'losses': len(problems), 'problems': problems[:50]}
