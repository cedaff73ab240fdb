"""Secrets hygiene: tokens are never logged (every logger at DEBUG, uvicorn's access log on, SQL statements with their parameters)
nor echoed after the one answer that creates them; nothing secret reaches an error message, the audit log or a file in plain;
the keyring is owner-only and the hub home private; and tokens, link signatures and the audit head are compared in a way whose
timing says nothing about the secret."""
import ast, base64, contextlib, inspect, io, json, logging, os, socket, stat, threading, time
from pathlib import Path
from types import SimpleNamespace
import httpx, numpy as np, pandas as pd, pytest, uvicorn
import leptonhub
from leptonhub import cli
from leptonhub.core import AccessDenied
from leptonhub.privacy.crypto import Keyring, KeyringError
from leptonhub.platform import access, audit, delta
from leptonhub.platform.hub import Hub, KEYRING_FILE
from leptonhub.platform.api import create_app
from leptonhub.platform.catalog import Token
from leptonhub.platform.client import RemoteHub

def mode(p:Path) -> int: return stat.S_IMODE(p.stat().st_mode)

def clinic(n:int=200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({'patient': [f'P{i:04d}' for i in range(n)], 'age': rng.integers(20, 90, n), 'chol': rng.normal(220, 40, n).round(1)})

class Capture(logging.Handler):
    "Every log record of every logger, formatted with its arguments and traceback."
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        self.setFormatter(logging.Formatter('%(name)s %(levelname)s %(message)s'))
    def emit(self, record): self.lines.append((record.name, self.format(record) + ' ' + repr(record.args)))

LOGGERS = ('', 'leptonhub', 'uvicorn', 'uvicorn.error', 'uvicorn.access', 'uvicorn.asgi', 'httpx', 'httpcore', 'sqlalchemy.engine', 'fastapi', 'starlette')

@contextlib.contextmanager
def everything_logged():
    "Every logger named above (and the root) at DEBUG with a capturing handler; `sqlalchemy.engine` logs each statement and its parameters."
    cap, saved = Capture(), {}
    for name in LOGGERS:
        lg = logging.getLogger(name)
        saved[name] = (lg.level, lg.propagate)
        lg.setLevel(logging.DEBUG)
        lg.addHandler(cap)
        lg.propagate = False   # each record once, here
    try: yield cap
    finally:
        for name in LOGGERS:
            lg = logging.getLogger(name)
            lg.removeHandler(cap)
            lg.setLevel(saved[name][0]); lg.propagate = saved[name][1]

@contextlib.contextmanager
def chatty_server(hub:Hub):
    "Serve `hub` with uvicorn at log level debug with its access log on, on a loopback port; yield the base URL."
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(('127.0.0.1', 0))
    server = uvicorn.Server(uvicorn.Config(create_app(hub), log_level='debug', access_log=True, log_config=None, lifespan='off'))
    t = threading.Thread(target=server.run, kwargs={'sockets': [sock]}, daemon=True)
    t.start()
    while not server.started: time.sleep(0.01)
    try: yield f'http://127.0.0.1:{sock.getsockname()[1]}'
    finally:
        server.should_exit = True
        t.join(10)
        sock.close()

def run_cli(*argv:str) -> tuple[int, str]:
    "Run `leptonhub ARGV` in this process; (exit code, stdout and stderr)."
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out): rc = cli.main(list(argv))
    return rc, out.getvalue()

def keyring_secrets(hub:Hub) -> list[str]:
    "Every key and secret of the hub's keyring, as hex and as base64."
    raw = list(hub.keyring.masters.values()) + list(hub.keyring.secrets.values())
    return [b.hex() for b in raw] + [base64.b64encode(b).decode() for b in raw]

@pytest.fixture
def session(hub_home, monkeypatch, tmp_path):
    """A run of the hub with everything logged: tokens issued, revoked, used and refused over the REST API, the Python client,
    Delta Sharing and the CLI. Returns what was logged, printed and issued."""
    for k in ('LEPTONHUB_TOKEN', 'LEPTONHUB_PASSPHRASE'): monkeypatch.delenv(k, raising=False)
    issued, printed = {}, {}
    with everything_logged() as cap:
        hub = Hub.init(hub_home, passphrase='correct horse battery staple')
        monkeypatch.setenv('LEPTONHUB_PASSPHRASE', 'correct horse battery staple')
        hub.publish('d', clinic(), keys=['patient'])
        issued['lab'] = hub.grant('d', to='lab', purpose='study')['token']
        issued['admin'] = hub.issue_token('admin')
        issued['revoked'] = hub.grant('d', to='gone', purpose='study')['token']
        hub.revoke_token(issued['revoked'])
        issued['wrong'] = access.new_token()
        with chatty_server(hub) as url:
            lab = httpx.Client(base_url=url, headers={'Authorization': f'Bearer {issued["lab"]}'})
            adm = httpx.Client(base_url=url, headers={'Authorization': f'Bearer {issued["admin"]}'})
            assert lab.get('/api/v1/whoami').json()['name'] == 'lab'
            assert lab.get('/api/v1/datasets/d/data').status_code == 200
            assert lab.get('/api/v1/datasets/d/data', params={'view': 'columns'}).status_code == 403
            for bad in ('wrong', 'revoked'):
                assert httpx.get(f'{url}/api/v1/datasets', headers={'Authorization': f'Bearer {issued[bad]}'}).status_code == 401
            made = adm.post('/api/v1/datasets/d/grants', json={'to': 'lab2', 'purpose': 'api grant', 'view': 'columns', 'columns': ['age']})
            issued['api'] = made.json()['token']
            assert made.text.count(issued['api']) == 1     # in the one answer that creates it, once
            printed['card'] = adm.get('/api/v1/datasets/d/card').text
            printed['audit'] = adm.get('/api/v1/audit').text
            lines = lab.post('/delta-sharing/shares/leptonhub/schemas/d/tables/raw/query', json={}).text.splitlines()
            assert httpx.get(json.loads(lines[2])['file']['url']).status_code == 200
            assert adm.delete('/api/v1/datasets/d/grants/lab2').json() == {'revoked': 1}
            remote = Hub.connect(url, issued['lab'])
            assert len(remote.read('d')) == 200 and issued['lab'] not in repr(remote)
            with pytest.raises(AccessDenied) as e: RemoteHub(url, issued['wrong'])
            printed['client error'] = str(e.value)
        monkeypatch.setenv('LEPTONHUB_HOME', str(hub_home))
        rc, printed['grant'] = run_cli('grant', 'd', '--to', 'cli-lab', '--purpose', 'cli study')
        assert rc == 0
        issued['cli'] = printed['grant'].rsplit(' ', 1)[-1].strip()
        assert issued['cli'].startswith(access.TOKEN_PREFIX)
        for cmd in (('ls',), ('show', 'd'), ('audit', '--json'), ('audit', '--report', '--json'), ('audit', '--verify')): printed[' '.join(cmd)] = run_cli(*cmd)[1]
        monkeypatch.setenv('LEPTONHUB_TOKEN', issued['cli'])
        printed['pull'] = run_cli('pull', 'd', '--out', str(tmp_path/'d.csv'))[1]
        monkeypatch.setenv('LEPTONHUB_TOKEN', issued['revoked'])
        printed['pull refused'] = run_cli('pull', 'd', '--out', str(tmp_path/'e.csv'))[1]
        monkeypatch.delenv('LEPTONHUB_TOKEN')
    assert 'leptonhub: error: this token was revoked' in printed['pull refused']
    names = {n for n, _ in cap.lines}
    assert {'uvicorn.access', 'uvicorn.error', 'httpcore.http11', 'sqlalchemy.engine.Engine', 'leptonhub.platform.hub'} <= names, names
    return SimpleNamespace(hub=hub, home=hub_home, logged=cap.lines, printed=printed, issued=issued)

def test_tokens_are_never_logged(session):
    text = '\n'.join(line for _, line in session.logged)
    assert len(session.logged) > 200 and 'GET /api/v1/whoami' in text and 'SELECT' in text   # it did log, and in detail
    for who, t in session.issued.items():
        assert t not in text, f"{who}'s token is in the log"
        assert t[len(access.TOKEN_PREFIX):][:16] not in text, f"part of {who}'s token is in the log"
    digests = [access.token_digest(t) for t in session.issued.values()]
    outside_sql = '\n'.join(line for name, line in session.logged if not name.startswith('sqlalchemy'))
    assert not [d for d in digests if d in outside_sql]      # digests reach only the database (and its statement log)

def test_no_secret_in_the_log_the_audit_or_the_files(session):
    hub = Hub(session.home)
    secrets = keyring_secrets(hub) + ['correct horse battery staple'] + list(session.issued.values())
    text = '\n'.join(line for _, line in session.logged)
    assert not [s for s in secrets if s in text]
    log = json.dumps(json.loads(hub.audit().to_json(orient='records', date_format='iso')))
    digests = [access.token_digest(t) for t in session.issued.values()]
    assert len(hub.audit()) > 15 and not [s for s in secrets + digests if s in log]
    assert hub.verify_audit()
    tokens = [t.encode() for t in session.issued.values()]
    for p in session.home.rglob('*'):                      # catalog.db, its -wal and -shm, the keyring, the blobs
        if p.is_file(): assert not [t for t in tokens if t in p.read_bytes()], p
    assert {'id', 'principal_id', 'digest', 'created_at', 'expires_at', 'revoked_at'} == set(Token.__table__.columns.keys())

def test_tokens_are_shown_once(session):
    p, t = session.printed, session.issued['cli']
    assert p['grant'].count(t) == 1 and 'shown once' in p['grant']
    others = {k: v for k, v in p.items() if k != 'grant'}
    for k, v in others.items():
        assert not [w for w, tok in session.issued.items() if tok in v], k       # no token in any later answer
        assert not [d for d in map(access.token_digest, session.issued.values()) if d in v], k
    assert json.loads(p['card'])['grants'] and 'token' not in json.dumps(json.loads(p['card'])['grants'])

def test_reprs_hold_no_secret(session):
    hub = Hub(session.home)
    lab = Hub(session.home, token=session.issued['lab'])
    shown = ' '.join([repr(hub), repr(lab), repr(hub.keyring), str(hub.keyring), repr(hub.settings), repr(lab.me)])
    assert not [s for s in keyring_secrets(hub) + list(session.issued.values()) if s in shown]
    assert "masters" not in repr(hub.keyring) and "secrets" not in repr(hub.keyring)

# ---------------------------------------------------------------------------------------------- error messages

def test_error_messages_hold_no_secret(hub_home, tmp_path):
    hub = Hub.init(hub_home, passphrase='right passphrase 1')
    hub.publish('d', clinic(20))
    t = hub.grant('d', to='lab', purpose='p')['token']
    hub.revoke_token(t)
    errors = []
    for attempt in (lambda: Keyring.open(hub_home/KEYRING_FILE, 'wrong passphrase 2'), lambda: Hub(hub_home),
                    lambda: Hub(hub_home, passphrase='wrong passphrase 2'), lambda: Hub(hub_home, passphrase='right passphrase 1', token=t),
                    lambda: Hub(hub_home, passphrase='right passphrase 1', token=t + 'x'), lambda: Hub(hub_home, passphrase='right passphrase 1', token=t[:-1])):
        with pytest.raises((KeyringError, AccessDenied)) as e: attempt()
        errors.append(str(e.value))
    assert errors[0] == f'wrong passphrase for keyring {hub_home/KEYRING_FILE}' and 'protected by a passphrase' in errors[1]
    assert errors[3:] == ['this token was revoked', 'unknown token', 'unknown token']
    assert not [m for m in errors if 'passphrase 1' in m or 'passphrase 2' in m or t[3:12] in m]

# ---------------------------------------------------------------------------------------------- file modes

def test_home_made_private_even_if_it_existed(tmp_path):
    home = tmp_path/'shared-folder'
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    hub = Hub.init(home)
    assert (mode(home), mode(home/KEYRING_FILE)) == (0o700, 0o600)

def test_modes_under_a_permissive_umask_and_after_key_changes(tmp_path, monkeypatch):
    "With umask 0 (everything created world-writable unless the code says otherwise), after rotations and a new passphrase."
    home = tmp_path/'hub'
    monkeypatch.setenv('LEPTONHUB_HOME', str(home))
    old = os.umask(0)
    try:
        assert run_cli('init')[0] == 0
        assert (mode(home), mode(home/KEYRING_FILE)) == (0o700, 0o600)
        hub = Hub(home)
        hub.publish('d', clinic(20))
        hub.rotate_keys()
        assert mode(home/KEYRING_FILE) == 0o600
        hub.keyring.change_passphrase('now with a passphrase')
        assert mode(home/KEYRING_FILE) == 0o600 and mode(home) == 0o700
        assert sorted(p.name for p in home.iterdir() if p.name.startswith('.')) == []   # no temporary keyring copies left
    finally: os.umask(old)

# ---------------------------------------------------------------------------------------------- constant-time comparison

SECRETISH = ('mac', 'sig', 'token', 'secret', 'passw', 'passphrase', 'digest', 'key')
REVIEWED = {   # comparisons with `==` / `!=` whose operands have secret-sounding names, each reviewed: why its timing leaks nothing
    ('platform/access.py', 'Token.digest == token_digest(token)'): 'an SQL lookup by SHA-256 of the token: timing reveals at most bits of a hash the caller chose',
    ('platform/hub.py', 'Token.digest == token_digest(token)'): 'the same lookup (revoke_token)',
    ('platform/hub.py', 'Token.digest == token_digest(self.token)'): 'the same lookup (who held a refused token, for the audit log)',
    ('platform/hub.py', 'k != self.keyring.current'): 'key ids are not secret',
    ('platform/audit.py', '_digest(prev, e) != e.digest'): 'chain digests are public: they are stored in plain beside the entries',
    ('platform/audit.py', 'head.digest != prev'): 'the same; the head is authenticated by its MAC, compared with hmac.compare_digest',
    ('platform/audit.py', 'Token.principal_id == Principal.id'): 'an SQL join on ids',
    ('privacy/crypto.py', "doc.get('format') != KEYRING_FORMAT"): 'a format name',
    ('privacy/dp.py', "sign == 'positive'"): 'not a signature: the sign of a bound',
    ('privacy/dp.py', "sign == 'non-negative'"): 'not a signature: the sign of a bound',
    ('privacy/dp.py', "sign == 'finite'"): 'not a signature: the sign of a bound',
    ('privacy/risk.py', 'pk[at] == keys'): 'record keys of a linkage attack, not secrets',
}

def test_every_secret_comparison_is_reviewed():
    "A new `==` on something secret-sounding fails here until it is shown to be safe (or replaced by `hmac.compare_digest`)."
    root = Path(leptonhub.__file__).parent
    found = set()
    for p in sorted(root.rglob('*.py')):
        for node in ast.walk(ast.parse(p.read_text())):
            if not (isinstance(node, ast.Compare) and any(isinstance(o, (ast.Eq, ast.NotEq)) for o in node.ops)): continue
            names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)] + [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
            if any(w in x.lower() for x in names for w in SECRETISH): found.add((str(p.relative_to(root)), ast.unparse(node)))
    assert found == set(REVIEWED), f'not reviewed: {found - set(REVIEWED)}; gone: {set(REVIEWED) - found}'

def calls(f, dotted:str) -> bool:
    "Does function `f` call `dotted` (e.g. `hmac.compare_digest`)?"
    return any(isinstance(n, ast.Call) and ast.unparse(n.func) == dotted for n in ast.walk(ast.parse(inspect.getsource(f).strip())))

def test_secrets_are_compared_in_constant_time():
    "Link signatures, the audit head's MAC and the keyring check go through `hmac.compare_digest`; tokens are found by their digest."
    for f in (delta.open_link, audit.verify, Hub._check_keyring): assert calls(f, 'hmac.compare_digest'), f.__name__
    assert calls(access.authenticate, 'token_digest') and calls(access.token_digest, 'hashlib.sha256')
    assert len(access.token_digest(access.new_token())) == 64 and len(access.new_token()) == len(access.TOKEN_PREFIX) + 43   # 256 random bits
