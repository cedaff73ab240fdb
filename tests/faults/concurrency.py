"""Several processes on one hub at once — publishers, readers, a granter and a key rotator — then a check that no
acknowledged write was lost, version numbers are unique and gapless, no reader saw a torn table, and no process hung."""
from __future__ import annotations
import multiprocessing as mp, queue, random, time, traceback
from collections import Counter

import sqlalchemy as sa
from leptonhub.core import AccessDenied, ConflictError, LeptonError
from leptonhub.platform.catalog import Grant
from leptonhub.platform.hub import Hub
from faults.crash import DATASETS, records, whole, plaintext_at_rest

def _guard(role:str, out, f):
    "Run `f()`, reporting any exception on `out` rather than dying silently."
    try: f()
    except BaseException as e: out.put(('error', role, f'{type(e).__name__}: {e}', traceback.format_exc(limit=3)))
    finally: out.put(('done', role))

def publisher(home:str, k:int, versions:int, start, out):
    "Publish `versions` tables, alternating between the datasets; acknowledge each with its version number and digest."
    def run():
        hub, rng = Hub(home), random.Random(1000 + k)
        start.wait(120)
        for i in range(versions):
            name, df = DATASETS[i % len(DATASETS)], records(rng, rng.randint(30, 150))
            r = hub.publish(name, df)
            out.put(('published', k, name, r['version'], df['dig'].iloc[0]))
    _guard(f'publisher {k}', out, run)

def reader(home:str, token:str, k:int, start, stop, out):
    "Read the latest and random earlier versions until `stop` is set; report what each read held and whether it was whole."
    def run():
        hub, rng = Hub(home, token=token), random.Random(2000 + k)
        start.wait(120)
        while not stop.is_set():
            name = rng.choice(DATASETS)
            numbers = hub.versions(name)['version'].tolist()
            v = rng.choice(numbers + [None])
            df = hub.read(name, version=v)
            out.put(('read', k, name, v, whole(df), df['dig'].iloc[0] if len(df) else None))
    _guard(f'reader {k}', out, run)

def granter(home:str, start, stop, out):
    "Grant and revoke until `stop` is set; acknowledge each."
    def run():
        hub, rng, i = Hub(home), random.Random(3000), 0
        start.wait(120)
        while not stop.is_set():
            name, who = rng.choice(DATASETS), f'g{i % 3}'
            g = hub.grant(name, to=who, purpose='concurrency check')
            out.put(('granted', g['grant'], name, who))
            if i % 2:
                hub.revoke(name, who)
                out.put(('revoked', name, who, g['grant']))
            i += 1
    _guard('granter', out, run)

def rotator(home:str, k:int, times:int, start, out):
    "Rotate the master key `times` times; acknowledge each new key and the keys it retired."
    def run():
        hub = Hub(home)
        start.wait(120)
        for _ in range(times):
            r = hub.rotate_keys()
            out.put(('rotated', k, r['key'], r['retired']))
            time.sleep(0.05)
    _guard(f'rotator {k}', out, run)

def run_concurrently(home, # a hub made with `Hub.init`
                     publishers:int=3, versions:int=4, readers:int=2, rotators:int=2, rotations:int=2,
                     timeout:float=150, # seconds before the run counts as hung
                     method:str='fork', # how the processes start: `fork` (quick: the modules are loaded already) or `spawn`
                    ) -> tuple[list[str], Counter]:
    "Run the workers against `home` at once; return (problems, counts)."
    home, bad, n = str(home), [], Counter()
    hub = Hub(home)
    base = {name: hub.publish(name, records(random.Random(name), 40)) for name in DATASETS}
    token = hub.add_principal('reader')
    for name in DATASETS: hub.grant(name, to='reader', purpose='concurrency check', token=False)
    hub.catalog.dispose()
    ctx = mp.get_context(method)
    workers = publishers + readers + rotators + 1
    start, stop, out = ctx.Barrier(workers), ctx.Event(), ctx.Queue()
    procs = ([ctx.Process(target=publisher, args=(home, k, versions, start, out)) for k in range(publishers)]
             + [ctx.Process(target=reader, args=(home, token, k, start, stop, out)) for k in range(readers)]
             + [ctx.Process(target=rotator, args=(home, k, rotations, start, out)) for k in range(rotators)]
             + [ctx.Process(target=granter, args=(home, start, stop, out))])
    for p in procs: p.start()
    roles = [f'publisher {k}' for k in range(publishers)] + [f'reader {k}' for k in range(readers)] + [f'rotator {k}' for k in range(rotators)] + ['granter']
    got, done, writers, t0 = [], set(), publishers + rotators, time.monotonic()
    try:
        while len(done) < workers:
            try: m = out.get(timeout=max(1, timeout - (time.monotonic() - t0)))
            except queue.Empty:
                bad.append(f'hung: after {timeout:g} s these had not finished: {sorted(set(roles) - done)}')
                break
            if m[0] == 'done':
                done.add(m[1])
                if sum(d.startswith(('publisher', 'rotator')) for d in done) == writers: stop.set()
            elif m[0] == 'error': bad.append(f'{m[1]} failed: {m[2]}')
            else: got.append(m)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive(): p.kill(); p.join()
    n['processes'] = workers
    n['seconds'] = round(time.monotonic() - t0, 1)
    _check(home, base, got, bad, n)
    return bad, n

def _check(home:str, base:dict, got:list, bad:list, n:Counter):
    "Compare what the workers acknowledged and saw with the hub as it is now."
    hub = Hub(home)
    stored = {}
    for name in DATASETS:
        numbers = hub.versions(name)['version'].tolist()
        if numbers != list(range(1, len(numbers) + 1)): bad.append(f'{name}: version numbers {numbers} are not 1..{len(numbers)}')
        for v in numbers:
            try: df = hub.read(name, version=v)
            except LeptonError as e: bad.append(f'{name} v{v} does not read: {e}'); continue
            if not whole(df): bad.append(f'{name} v{v} is not whole')
            stored[(name, v)] = df['dig'].iloc[0]
    n['versions'] = len(stored)
    published = [m for m in got if m[0] == 'published']
    n['publishes acknowledged'] = len(published)
    acked = Counter((name, v) for _, _, name, v, _ in published) + Counter((name, r['version']) for name, r in base.items())
    bad += [f'{name} v{v} was handed to {c} publishers' for (name, v), c in acked.items() if c > 1]
    bad += [f'acknowledged {name} v{v} is missing or different' for _, _, name, v, dig in published if stored.get((name, v)) != dig]
    if len(stored) != len(acked): bad.append(f'{len(stored)} versions stored, {len(acked)} acknowledged')
    for k in {m[1] for m in published}:
        mine = [(name, v) for _, kk, name, v, _ in published if kk == k]
        for name in DATASETS:
            vs = [v for nm, v in mine if nm == name]
            if vs != sorted(vs): bad.append(f'publisher {k} got versions of {name} out of order: {vs}')
    reads = [m for m in got if m[0] == 'read']
    n['reads'] = len(reads)
    bad += [f'reader {k} saw a torn table of {name} (version {v})' for _, k, name, v, ok, _ in reads if not ok]
    bad += [f'reader {k} read {name} v{v} with other content than stored' for _, k, name, v, _, dig in reads if v is not None and stored.get((name, v)) != dig]
    bad += [f'reader {k} read {name} content that no version holds' for _, k, name, v, _, dig in reads if dig not in set(stored.values())]
    with hub.catalog.session() as s: grants = {g.id: g for g in s.scalars(sa.select(Grant))}
    granted, revoked = [m for m in got if m[0] == 'granted'], [m for m in got if m[0] == 'revoked']
    n['grants acknowledged'], n['revokes acknowledged'] = len(granted), len(revoked)
    bad += [f'acknowledged grant {m[1]} is missing' for m in granted if m[1] not in grants]
    bad += [f'acknowledged revoke of {m[3]} did not hold' for m in revoked if m[3] not in grants or grants[m[3]].revoked_at is None]
    rotated = [m for m in got if m[0] == 'rotated']
    n['rotations acknowledged'] = len(rotated)
    keys = set(hub.keyring.masters)
    bad += [f'rotation {m[2]} left retired key {k} in the keyring' for m in rotated for k in m[3] if k in keys and k != hub.keyring.current]
    if not (v := hub.verify_audit()): bad.append(f'audit: {v}')
    log = hub.audit()
    ok = log[log.outcome == 'ok']
    if (ok.action == 'publish').sum() != len(acked): bad.append(f"{(ok.action == 'publish').sum()} publishes audited, {len(acked)} acknowledged")
    if (ok.action == 'rotate_keys').sum() != len(rotated): bad.append(f"{(ok.action == 'rotate_keys').sum()} rotations audited, {len(rotated)} acknowledged")
    if ((ok.action == 'read') & (ok.actor == 'reader')).sum() < len(reads): bad.append('fewer reads audited than the readers made')
    bad += [f'plaintext marker found in {p}' for p in plaintext_at_rest(home)]
    hub.catalog.dispose()
