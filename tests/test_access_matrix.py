"""The access matrix: every REST operation (enumerated from the app's OpenAPI description) and every CLI command, for every kind
of caller and every view kind, with the expected outcome of each cell written out below and asserted, and every denial found
in the audit log. The counts land in `bench/results/access_matrix.json`."""
import base64, contextlib, functools, hmac, inspect, io, json, os, secrets, shutil, time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
import httpx, numpy as np, pandas as pd, pyarrow as pa, pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from leptonhub import cli
from leptonhub.core import AccessDenied, ConfigError, InputError, LeptonError, utcnow
from leptonhub.privacy.crypto import KeyringError
from leptonhub.platform.hub import Hub
from leptonhub.platform.api import running, create_app
from leptonhub.platform.catalog import AuditEntry, Grant, Principal, Token

VIEWS = ('raw', 'columns', 'pseudonymized', 'anonymized', 'aggregate')
QI = ['age', 'sex', 'zip']
PARAMS = {'raw': {}, 'columns': {'columns': ['age', 'sex', 'chol', 'diagnosis']}, 'pseudonymized': {'identifiers': ['patient'], 'drop': ['zip']},
          'anonymized': {'qi': QI, 'k': 5, 'drop': ['patient']}, 'aggregate': {'epsilon': 50.0}}
RESULTS = Path(__file__).resolve().parents[1]/'bench'/'results'/'access_matrix.json'

# ---------------------------------------------------------------------------------------------- the world

def clinic_table(n:int=300, seed:int=0) -> pd.DataFrame:
    "A generated clinic table: an identifier, quasi-identifiers, a lab value and a diagnosis."
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'patient': [f'P{seed}{i:05d}' for i in range(n)], 'age': rng.integers(20, 90, n), 'sex': rng.choice(['F', 'M'], n),
                         'zip': rng.choice(['10115', '10117', '10119'], n), 'chol': rng.normal(220, 40, n).round(1),
                         'diagnosis': rng.choice(['healthy', 'angina', 'infarct'], n, p=[0.6, 0.3, 0.1])})

def principal(role:str, v:str) -> str|None:
    "The principal who plays `role` for view kind `v` (None: no principal behind the token)."
    fixed = {'admin': 'admin', 'owner': 'owner1', 'other_owner': 'owner2', 'ungranted': 'stranger', 'no_token': 'admin'}
    per_view = {'granted': 'c', 'other_view': 'o', 'expired_grant': 'xg', 'revoked_grant': 'rg', 'expired_token': 'xt', 'revoked_token': 'rt', 'remote': 'c'}
    return fixed[role] if role in fixed else f'{per_view[role]}-{v}' if role in per_view else None

def _expire(home:Path, grants:list[str]=(), tokens:list[str]=()):
    "Move the expiry of these principals' grants (or tokens) an hour into the past, as if that hour had passed."
    hub = Hub(home)
    with hub.catalog.session() as s:
        past = utcnow() - timedelta(hours=1)
        for name in grants:
            for g in s.scalars(sa.select(Grant).join(Principal, Grant.principal_id == Principal.id).where(Principal.name == name)): g.expires_at = past
        for name in tokens:
            for t in s.scalars(sa.select(Token).join(Principal, Token.principal_id == Principal.id).where(Principal.name == name)): t.expires_at = past
    hub.catalog.dispose()

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A hub where `owner1` owns dataset `d` (300 records) and `owner2` owns `e`; `stranger` holds a grant on `e` only; and for
    every view kind V: `c-V` holds a grant of V, `o-V` grants of every view but V, `xg-V` an expired grant of V, `rg-V` a revoked one,
    `xt-V` a live grant but an expired token, `rt-V` a live grant but a revoked token. Built once, copied per test."""
    home = tmp_path_factory.mktemp('matrix')/'hub'
    admin = Hub.init(home)
    tok = {'admin': admin.issue_token('admin'), 'owner': admin.add_principal('owner1', role='owner'),
           'other_owner': admin.add_principal('owner2', role='owner'), 'wrong_token': 'lh_' + secrets.token_urlsafe(32), 'no_token': None}
    owner, other = Hub(home, token=tok['owner']), Hub(home, token=tok['other_owner'])
    owner.publish('d', clinic_table(), keys=['patient'], qi=QI)
    other.publish('e', clinic_table(40, seed=1), keys=['patient'])
    tok['ungranted'] = other.grant('e', to='stranger', purpose='another study')['token']
    for v in VIEWS:
        g = lambda who, view=v, **kw: owner.grant('d', to=who, purpose='matrix', view=view, **PARAMS[view], **kw)['token']
        tok['granted', v] = tok['remote', v] = g(f'c-{v}')
        tok['other_view', v] = [g(f'o-{v}', view=w, token=not i) for i, w in enumerate(x for x in VIEWS if x != v)][0]
        tok['expired_grant', v] = g(f'xg-{v}', expires='1h')
        tok['revoked_grant', v] = g(f'rg-{v}')
        owner.revoke('d', f'rg-{v}')
        tok['expired_token', v] = g(f'xt-{v}')
        tok['revoked_token', v] = g(f'rt-{v}')
        admin.revoke_token(tok['revoked_token', v])
    for h in (admin, owner, other): h.catalog.dispose()
    _expire(home, grants=[f'xg-{v}' for v in VIEWS], tokens=[f'xt-{v}' for v in VIEWS])
    return home, tok

VIEW_ROLES = ('granted', 'other_view', 'expired_grant', 'revoked_grant', 'remote')   # callers whose grant is of one view kind (xt-V and rt-V's tokens are refused before any grant is looked at)

def per_view(names_view:bool, role:str, expect:dict, key:tuple) -> bool:
    "Does a cell depend on the view kind? Only if the request names a view or the caller's grant is of one; else the table must agree."
    if names_view or role in VIEW_ROLES: return True
    assert len({expect[(*key, v)] for v in VIEWS}) == 1, f'{key}: one outcome expected for every view'
    return False

def token(tok:dict, role:str, v:str) -> str|None: return tok.get(role, tok.get((role, v)))

def copy_world(world, tmp_path) -> tuple[Path, dict]:
    src, tok = world
    home = tmp_path/'hub'
    shutil.copytree(src, home)
    return home, tok

def head(hub:Hub) -> int:
    with hub.catalog.session() as s: return s.scalar(sa.select(sa.func.max(AuditEntry.seq))) or 0

def entries_after(hub:Hub, seq:int) -> list[SimpleNamespace]:
    "The audit entries after `seq`."
    with hub.catalog.session() as s:
        return [SimpleNamespace(seq=e.seq, actor=e.actor, action=e.action, outcome=e.outcome, view=e.view, rows=e.rows, detail=e.detail or {})
                for e in s.scalars(sa.select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq))]

def parse(table:str, columns:tuple) -> dict:
    "A whitespace table (first line: header) as {(row, column, view): outcome}; a cell of five `/`-separated outcomes is one per view."
    lines = [l for l in table.strip().splitlines() if l.strip() and not l.startswith('#')]
    head_, rows = lines[0].split(), lines[1:]
    assert tuple(head_[-len(columns):]) == columns, head_
    out = {}
    for line in rows:
        parts = line.split()
        name, cells = ' '.join(parts[:-len(columns)]), parts[-len(columns):]
        assert len(cells) == len(columns), line
        for col, cell in zip(columns, cells):
            per_view = cell.split('/')
            assert len(per_view) in (1, len(VIEWS)), line
            for i, v in enumerate(VIEWS): out[name, col, v] = per_view[i if len(per_view) > 1 else 0]
    return out

def save_counts(key:str, counts:dict):
    "Merge `counts` under `key` into bench/results/access_matrix.json."
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc[key] = counts
    doc['cells'] = sum(d['cells'] for k, d in doc.items() if isinstance(d, dict) and 'cells' in d)
    doc['denials'] = sum(d['denials'] for k, d in doc.items() if isinstance(d, dict) and 'denials' in d)
    doc['audited'] = sum(d['audited'] for k, d in doc.items() if isinstance(d, dict) and 'audited' in d)
    tmp = RESULTS.with_name(f'.{RESULTS.name}.{secrets.token_hex(4)}.tmp')
    tmp.write_text(json.dumps(doc, indent=2) + '\n')
    os.replace(tmp, RESULTS)

# ---------------------------------------------------------------------------------------------- REST

ROLES = ('admin', 'owner', 'other_owner', 'ungranted', 'granted', 'other_view', 'expired_grant', 'revoked_grant', 'expired_token',
         'revoked_token', 'wrong_token', 'no_token')

# One row per operation, one column per kind of caller. A cell is one outcome for every view kind, or five separated by `/` in
# the order raw/columns/pseudonymized/anonymized/aggregate: the view the request names (data, grants, Delta Sharing tables), or
# else the view of the caller's grant (`other_view` holds grants of every view *but* that one). `200+` / `200-`: answered, and
# dataset d is / is not in the listing. The owner reads its own views over HTTP without parameters, so views that need them
# (columns, pseudonymized, anonymized, aggregate) are 422 for the owner and the admin.
HTTP = '''
operation                                                                   admin                owner                other_owner  ungranted  granted                   other_view           expired_grant  revoked_grant  expired_token  revoked_token  wrong_token  no_token
GET /health                                                                 200                  200                  200          200        200                       200                  200            200            200            200            200          200
GET /api/v1/whoami                                                          200                  200                  200          200        200                       200                  200            200            401            401            401          401
GET /api/v1/datasets                                                        200+                 200+                 200-         200-       200+                      200+                 200-           200-           401            401            401          401
GET /api/v1/datasets/{name}/versions                                        200                  200                  404          404        200                       200                  404            404            401            401            401          401
GET /api/v1/datasets/{name}/card                                            200                  200                  404          404        200                       200                  404            404            401            401            401          401
GET /api/v1/datasets/{name}/quality                                         200                  200                  404          404        200                       200                  404            404            401            401            401          401
GET /api/v1/datasets/{name}/ledger                                          200                  200                  404          404        200                       200                  404            404            401            401            401          401
GET /api/v1/datasets/{name}/data                                            200/422/422/422/422  200/422/422/422/422  403          403        200/200/200/200/403       403                  403            403            401            401            401          401
POST /api/v1/datasets/{name}/query                                          200                  200                  403          403        403/403/403/403/200       200/200/200/200/403  403            403            401            401            401          401
POST /api/v1/datasets/{name}/query/cost                                     200                  200                  403          403        403/403/403/403/200       200/200/200/200/403  403            403            401            401            401          401
GET /api/v1/datasets/{name}/budget                                          422                  422                  403          403        403/403/403/403/200       200/200/200/200/403  403            403            401            401            401          401
POST /api/v1/datasets/{name}/grants                                         200                  200                  403          403        403                       403                  403            403            401            401            401          401
DELETE /api/v1/datasets/{name}/grants/{principal}                           200                  200                  403          403        403                       403                  403            403            401            401            401          401
GET /api/v1/audit                                                           200                  403                  403          403        403                       403                  403            403            401            401            401          401
GET /api/v1/audit?dataset=d                                                 200                  200                  403          403        403                       403                  403            403            401            401            401          401
GET /api/v1/audit/verify                                                    200                  200                  200          200        200                       200                  200            200            401            401            401          401
GET /delta-sharing/shares                                                   200                  200                  200          200        200                       200                  200            200            401            401            401          401
GET /delta-sharing/shares/{share}                                           200                  200                  200          200        200                       200                  200            200            401            401            401          401
GET /delta-sharing/shares/{share}/schemas                                   200-                 200-                 200-         200-       200+/200+/200+/200+/200-  200+                 200-           200-           401            401            401          401
GET /delta-sharing/shares/{share}/schemas/{schema}/tables                   404                  404                  404          404        200/200/200/200/404       200                  404            404            401            401            401          401
GET /delta-sharing/shares/{share}/all-tables                                200-                 200-                 200-         200-       200+/200+/200+/200+/200-  200+                 200-           200-           401            401            401          401
GET /delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/version   404                  404                  404          404        200/200/200/200/404       404                  404            404            401            401            401          401
GET /delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/metadata  404                  404                  404          404        200/200/200/200/404       404                  404            404            401            401            401          401
POST /delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/query    404                  404                  404          404        200/200/200/200/404       404                  404            404            401            401            401          401
'''

SPEC = {'kind': 'mean', 'column': 'chol', 'epsilon': 0.05, 'bounds': [100, 400]}

def http_request(op:str, role:str, v:str, admin:Hub) -> tuple[str, str, dict]:
    "(method, URL path, httpx keywords) of operation `op` for cell (`role`, `v`); prepares what the cell needs."
    method, path = op.split(' ', 1)
    path, _, query = path.partition('?')
    kw = {'params': dict(p.split('=') for p in query.split('&'))} if query else {}
    path = path.replace('{name}', 'd').replace('{share}', 'leptonhub').replace('{schema}', 'd').replace('{table}', v)
    if path.endswith('/data'): kw['params'] = {'view': v}
    elif path.endswith(('/query', '/query/cost')) and path.startswith('/api'): kw['json'] = SPEC
    elif path.endswith('/query'): kw['json'] = {}
    elif path.endswith('/grants'):
        p = dict(PARAMS[v])
        kw['json'] = {'to': f'new-{role}-{v}', 'purpose': 'matrix', 'view': v, 'columns': p.pop('columns', None), 'params': p}
    elif '{principal}' in path:
        victim = f'victim-{role}-{v}'
        admin.grant('d', to=victim, purpose='to be revoked', view=v, token=False, **PARAMS[v])
        path, kw['params'] = path.replace('{principal}', victim), {'view': v}
    return method, path, kw

def names_listed(op:str, body:dict) -> set:
    "The dataset names a listing answer shows."
    if op.endswith('/api/v1/datasets'): return {row[body['columns'].index('name')] for row in body['rows']}
    if op.endswith('/schemas'): return {i['name'] for i in body['items']}
    return {i['schema'] for i in body['items']}

def check_answer(op:str, role:str, v:str, expect:str, r:httpx.Response, home:Path, tok:str|None):
    "What an allowed cell answered is what that caller may see."
    if expect in ('200+', '200-'): assert ('d' in names_listed(op, r.json())) == (expect == '200+'), (op, role, v, r.text)
    if op == 'GET /api/v1/whoami': assert r.json()['name'] == principal(role, v)
    if op == 'GET /api/v1/datasets/{name}/card': assert ('grants' in r.json()) == (role in ('admin', 'owner')), (role, v)
    if op == 'GET /api/v1/datasets/{name}/data':
        got = pa.ipc.open_stream(r.content).read_pandas()
        want = Hub(home, token=tok).read('d', view=v)
        assert_frame_equal(got, want)
        assert 'patient' not in got or v == 'raw' or (v == 'pseudonymized' and not got.patient.str.startswith('P0').any())

def test_http_access_matrix(world, tmp_path):
    home, tok = copy_world(world, tmp_path)
    expect = parse(HTTP, ROLES)
    admin = Hub(home)
    ops = {' '.join(k.split()[:2]).split('?')[0] for k, _, _ in expect}
    spec_ops = {f'{m.upper()} {p}' for p, item in create_app(admin).openapi()['paths'].items() for m in item}
    assert ops == spec_ops, f'operations without a row: {spec_ops - ops}; rows for no operation: {ops - spec_ops}'
    counts = {'cells': 0, 'allowed': 0, 'denials': 0, 'audited': 0, 'by_status': {}}
    with running(admin) as url, httpx.Client(base_url=url, timeout=60) as client:
        for (op, role, v), want in expect.items():
            if not per_view(op.endswith(('/data', '/grants', '{principal}')) or '{table}' in op, role, expect, (op, role)) and v != VIEWS[0]: continue
            t = token(tok, role, v)
            method, path, kw = http_request(op, role, v, admin)
            before = head(admin)
            r = client.request(method, path, headers={'Authorization': f'Bearer {t}'} if t else {}, **kw)
            cell = f'{op} | {role} | {v}'
            assert r.status_code == int(want[:3]), f'{cell}: expected {want}, got {r.status_code} {r.text[:300]}'
            counts['cells'] += 1
            counts['by_status'][str(r.status_code)] = counts['by_status'].get(str(r.status_code), 0) + 1
            new = entries_after(admin, before)
            if r.status_code < 400:
                counts['allowed'] += 1
                if op.endswith('/data'): assert [(e.actor, e.action, e.outcome, e.view) for e in new] == [(principal(role, v), 'read', 'ok', v)], cell
                check_answer(op, role, v, want, r, home, t)
                continue
            counts['denials'] += 1
            body = r.json()
            assert set(body) == {'code', 'message'} and body['message'], cell
            if t: assert t not in r.text, cell
            who = 'anonymous' if r.status_code == 401 else principal(role, v)
            refusal = [e for e in new if e.action == 'http' and e.outcome == 'denied' and e.detail.get('status') == r.status_code and e.actor == who]
            assert len(refusal) == 1, f'{cell}: the refusal is not in the audit log: {new}'
            if role in ('expired_token', 'revoked_token', 'wrong_token'):   # the token check itself is on record, under the token's holder
                assert [e.actor for e in new if e.action == 'authenticate' and e.outcome == 'denied'] == [principal(role, v) or 'unknown token'], cell
            counts['audited'] += 1
    assert counts['audited'] == counts['denials'] > 0
    assert admin.verify_audit()
    save_counts('http', counts)

# ---------------------------------------------------------------------------------------------- CLI

CLI_ROLES = ('no_token', 'admin', 'owner', 'other_owner', 'ungranted', 'granted', 'other_view', 'expired_grant', 'revoked_grant',
             'expired_token', 'revoked_token', 'wrong_token', 'remote')

# One row per command (two for `audit` and `pii`), one column per caller: the token in $LEPTONHUB_TOKEN (`no_token`: none, so
# the hub home's admin; `remote`: c-V's token with no hub home on this machine). Cells as for REST, naming the error the command
# raises: AD AccessDenied, IE InputError, CE ConfigError, KE KeyringError. `pull`, `query` and `train` act as the holder of
# $LEPTONHUB_TOKEN; the operator's commands act as the hub home's admin whatever the token (the keyring is their credential),
# so they need the hub home; `quality`, `anonymize`, `risk` and `pii` without `--mode pseudonym` read only the file they are
# given. `demo` builds its own hub in its --out folder and reads neither a hub home nor a token (see test_demo_reads_no_hub);
# the application commands (`support`, `sentiment`, `recommend`) learn from and score only the files they are given
# (tests/test_cli_apps.py), so no caller's token changes what they may read.
NO_HUB = {'demo', 'support', 'sentiment', 'recommend'}
CLI = '''
command               no_token        admin           owner           other_owner  ungranted  granted         other_view      expired_grant  revoked_grant  expired_token  revoked_token  wrong_token  remote
pull                  ok/IE/IE/IE/IE  ok/IE/IE/IE/IE  ok/IE/IE/IE/IE  AD           AD         ok/ok/ok/ok/AD  AD              AD             AD             AD             AD             AD           CE
query                 ok              ok              ok              AD           AD         AD/AD/AD/AD/ok  ok/ok/ok/ok/AD  AD             AD             AD             AD             AD           CE
train                 ok/IE/IE/IE/IE  ok/IE/IE/IE/IE  ok/IE/IE/IE/IE  AD           AD         ok/ok/ok/ok/AD  AD              AD             AD             AD             AD             AD           CE
publish               ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
ls                    ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
show                  ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
grant                 ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
revoke                ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
audit                 ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
audit --verify        ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
report                ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
serve                 ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
init                  KE              KE              KE              KE           KE         KE              KE              KE             KE             KE             KE             KE           ok
pii --mode pseudonym  ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           CE
pii                   ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           ok
quality               ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           ok
anonymize             ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           ok
risk                  ok              ok              ok              ok           ok         ok              ok              ok             ok             ok             ok             ok           ok
'''
ERRORS = {'AD': AccessDenied, 'IE': InputError, 'CE': ConfigError, 'KE': KeyringError}
AS_HOLDER = ('pull', 'query', 'train')   # the commands that act as the holder of $LEPTONHUB_TOKEN
FILE_TOOLS = ('pii', 'quality', 'anonymize', 'risk')

def cli_argv(row:str, role:str, v:str, work:Path, admin:Hub) -> list[str]:
    "The command line of CLI cell (`row`, `role`, `v`); prepares what it needs."
    tag = f'{role}-{v}'
    f = str(work/'visits.csv')
    return {'pull': ['pull', 'd', '--view', v, '--out', str(work/f'{tag}.csv')],
            'query': ['query', 'd', '--kind', 'mean', '--column', 'chol', '--epsilon', '0.05', '--bounds', '100,400', '--json'],
            'train': ['train', 'd', '--target', 'diagnosis', '--view', v, '--epochs', '1', '--json'],
            'publish': ['publish', f'p-{tag}', f, '--json'], 'ls': ['ls', '--json'], 'show': ['show', 'd'],
            'grant': ['grant', 'd', '--to', f'cli-{tag}', '--purpose', 'matrix'],
            'revoke': ['revoke', 'd', '--from', admin.grant('d', to=f'cli-victim-{tag}', purpose='to be revoked', token=False)['principal']],
            'audit': ['audit', '--dataset', 'd', '--json'], 'audit --verify': ['audit', '--verify'],
            'report': ['report', 'd', '--ks', '2', '--methods', 'mondrian', '--p-target', '0.1', '--json'], 'serve': ['serve'], 'init': ['init'],
            'pii --mode pseudonym': ['pii', f, '--redact', str(work/f'{tag}-redacted.csv'), '--mode', 'pseudonym', '--json'],
            'pii': ['pii', f, '--json'], 'quality': ['quality', f, '--json'],
            'anonymize': ['anonymize', f, '--qi', 'age,sex', '--k', '2', '--out', str(work/f'{tag}-anon.csv'), '--json'],
            'risk': ['risk', f, '--qi', 'age,sex', '--json']}[row]

@functools.cache
def cli_parser(): return cli.parser()   # built once: building it reads every command's docments

def run_command(argv:list[str]) -> tuple[LeptonError|None, str]:
    "Run a `leptonhub` command line as `cli.main` does, but hand back the error it raised (None if none) and what it printed."
    args = vars(cli_parser().parse_args(argv))
    f = cli.COMMANDS[args.pop('command')]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: f(**{k: args[k] for k in inspect.signature(f).parameters}); e = None
        except LeptonError as x: e = x
    return e, out.getvalue()

@pytest.fixture
def fast_cli(monkeypatch):
    "Stub what is slow or blocking and not about access: training a model, drawing the share report, and serving (it records who would serve)."
    import leptonhub.apps.train as T, leptonhub.platform.api as A, leptonhub.metrics.report as R
    served = []
    monkeypatch.setattr(T, 'train_table', lambda train, valid, test, target, *a, **k: {
        'card': {'rows': len(train) + len(valid) + len(test), 'columns': sorted(train.columns)}, 'metrics': {}, 'epsilon': None,
        'attack': SimpleNamespace(auc=0.5, exposed=0.0), 'model': None})
    monkeypatch.setattr(R, 'share_report', lambda res, data, qi, name, card, out: {'dataset': name, 'rows': len(data)})
    monkeypatch.setattr(A, 'serve', lambda hub, host, port, **kw: served.append((hub.me.name, host)))
    return served

def test_cli_access_matrix(world, tmp_path, monkeypatch, fast_cli):
    home, tok = copy_world(world, tmp_path)
    expect = parse(CLI, CLI_ROLES)
    assert {k.split()[0] for k, _, _ in expect} | NO_HUB == set(cli.COMMANDS)
    work = tmp_path/'work'
    work.mkdir()
    clinic_table(60, seed=3).to_csv(work/'visits.csv', index=False)
    admin = Hub(home)
    counts = {'cells': 0, 'allowed': 0, 'denials': 0, 'audited': 0, 'no_hub': 0}
    for (row, role, v), want in expect.items():
        if not (row in ('pull', 'train') or (row in AS_HOLDER and per_view(False, role, expect, (row, role)))) and v != VIEWS[0]:
            assert len({expect[row, role, w] for w in VIEWS}) == 1, (row, role)
            continue   # the operator's commands and the file tools never read a token, so the view of its holder's grant is moot
        t = token(tok, role, v) if role != 'no_token' else None
        monkeypatch.setenv('LEPTONHUB_HOME', str(tmp_path/'elsewhere'/f'{row}-{v}'.replace(' ', '') if role == 'remote' else home))
        if t: monkeypatch.setenv('LEPTONHUB_TOKEN', t)
        else: monkeypatch.delenv('LEPTONHUB_TOKEN', raising=False)
        argv = cli_argv(row, role, v, work, admin)
        before = head(admin)
        err, out = run_command(argv)
        cell = f'{row} | {role} | {v}'
        got = 'ok' if err is None else next((k for k, c in ERRORS.items() if type(err) is c), type(err).__name__)
        assert got == want, f'{cell}: expected {want}, got {got}: {err}'
        counts['cells'] += 1
        if t: assert t not in out and (err is None or t not in str(err)), cell
        new = entries_after(admin, before)
        if role == 'remote' or row in FILE_TOOLS:
            assert new == [], f'{cell}: touched the hub: {new}'     # no hub home here, or a command on a file only
            counts['no_hub' if err else 'allowed'] += 1
            continue
        acting = principal(role, v) if row in AS_HOLDER else 'admin'
        if err is None:
            counts['allowed'] += 1
            assert all(e.actor == acting and e.outcome == 'ok' for e in new), f'{cell}: {new}'
            if row in ('pull', 'train'): assert [(e.action, e.view) for e in new] == [('read', v)], cell
            if row == 'serve': assert fast_cli[-1] == ('admin', '127.0.0.1')
            continue
        if isinstance(err, KeyringError): continue   # init over an existing hub: refused before any hub is opened
        counts['denials'] += 1
        holder = acting if role != 'wrong_token' else 'unknown token'
        assert [e for e in new if e.actor == holder and e.outcome == 'denied'], f'{cell}: the denial is not in the audit log: {new}'
        counts['audited'] += 1
    assert counts['audited'] == counts['denials'] > 0
    assert admin.verify_audit()
    save_counts('cli', counts)

def test_demo_reads_no_hub():
    "`demo` and the application commands take no token and no hub home: their source never opens one (`demo` builds its own hub in --out)."
    for name in NO_HUB:
        src = inspect.getsource(cli.COMMANDS[name])
        assert '_hub(' not in src and 'LEPTONHUB' not in src and 'ENV_TOKEN' not in src and 'Hub' not in src, name

# ---------------------------------------------------------------------------------------------- Delta Sharing file links

class FrozenClock:
    "A stand-in for the `time` module in `leptonhub.platform.delta`: `time()` says what the test sets."
    def __init__(self, now:float): self.now = now
    def time(self) -> float: return self.now

def _b64(doc:dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(',', ':')).encode()).rstrip(b'=').decode()

def test_signed_links_forged_or_replayed(hub_home, tmp_path, monkeypatch):
    """File links are bearer credentials for LINK_SECONDS: a link replayed after that (on a frozen clock), or whose claims were edited
    (expiry, part, grant), or signed by another hub, or whose grant has since expired, is refused with 403, and each refusal audited."""
    from leptonhub.platform import delta
    hub = Hub.init(hub_home)
    hub.publish('d', clinic_table(), keys=['patient'])
    lab = hub.grant('d', to='lab', purpose='links', view='anonymized', **PARAMS['anonymized'])
    other = hub.grant('d', to='other-lab', purpose='links', view='raw')
    clock = FrozenClock(time_now := float(int(time.time())))
    monkeypatch.setattr(delta, 'time', clock)
    stranger = Hub.init(tmp_path/'another-hub')
    with running(hub) as url, httpx.Client(base_url=url, headers={'Authorization': f'Bearer {lab["token"]}'}) as c:
        lines = c.post('/delta-sharing/shares/leptonhub/schemas/d/tables/anonymized/query', json={}).text.splitlines()
        good = json.loads(lines[2])['file']['url']
        base, link = good.rsplit('/', 1)
        claims, sig = link.split('.')
        doc = json.loads(base64.urlsafe_b64decode(claims + '=' * (-len(claims) % 4)))
        assert doc == {'g': lab['grant'], 'v': 1, 'p': 0, 'e': int(time_now + delta.LINK_SECONDS)}
        assert httpx.get(good).status_code == 200
        clock.now = doc['e']
        assert httpx.get(good).status_code == 200                    # the last second of its lifetime
        forged = {'expiry pushed back': f'{base}/{_b64({**doc, "e": doc["e"] + 3600})}.{sig}',
                  'another part': f'{base}/{_b64({**doc, "p": 1})}.{sig}',
                  "another consumer's grant": f'{base}/{_b64({**doc, "g": other["grant"]})}.{sig}',
                  'signed by another hub': f'{base}/{delta.sign_link(delta.link_key(stranger), lab["grant"], 1, 0)}',
                  'signed with the token': f'{base}/{claims}.' + base64.urlsafe_b64encode(hmac.new(lab['token'].encode(), claims.encode(), 'sha256').digest()).rstrip(b'=').decode(),
                  'signature cut': f'{base}/{claims}.{sig[:20]}', 'no signature': f'{base}/{claims}.', 'not a link': f'{base}/{"A" * 60}'}
        refused = {}
        for name, bad in forged.items():
            r = httpx.get(bad)
            refused[name] = (r.status_code, r.json()['message'])
        assert refused == {k: (403, 'this file link is not valid: its signature does not match') for k in forged}
        clock.now = doc['e'] + 1                                      # the same link, replayed after it expired
        r = httpx.get(good)
        assert (r.status_code, r.json()['message']) == (403, 'this file link has expired: query the table again for fresh links')
        assert httpx.head(good).status_code == 403
        clock.now = time_now
        _expire(hub_home, grants=['lab'])                             # a fresh link, but its grant has since expired
        r = httpx.get(good)
        assert (r.status_code, r.json()['message']) == (403, 'the grant behind this link expired')
    refusals = hub.audit().query("action == 'http'")
    assert refusals[['actor', 'outcome']].drop_duplicates().values.tolist() == [['anonymous', 'denied']]
    assert refusals.detail.map(lambda d: d['status']).tolist() == [403] * (len(forged) + 3)
    assert hub.verify_audit()
    save_counts('delta_links', {'cells': len(forged) + 5, 'allowed': 2, 'denials': len(refusals), 'audited': len(refusals)})
