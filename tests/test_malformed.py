"""Every malformed input of the corpus (`tests/malformed`), through every public entry point it can reach, is refused with one
clear, typed error naming what was wrong — and leaves nothing behind.

Entry points: `ingest`, `Hub.publish` with a path, the `leptonhub publish` command (in-process, `leptonhub.cli.main`), a local
`Hub` read by name, and the HTTP API of a server on loopback. "Nothing behind" is checked on a snapshot of the hub home taken
before and after each refusal: every file but the catalog database (path and SHA-256), no temporary or `.old` file anywhere,
and the row count of every catalog table (the audit log may gain exactly the refusal the server records for an HTTP request).

The figures of a full run (inputs, calls, clear errors, half-written results) go to `bench/results/malformed.json`."""
from __future__ import annotations
import hashlib, json, sqlite3, time
from pathlib import Path
from urllib.parse import quote
import httpx, pytest
from leptonhub.core import LeptonError, InputError, NotFoundError, atomic_write
from leptonhub.cli import main
from leptonhub.platform.hub import Hub
from leptonhub.platform.api import running
from leptonhub.platform.ingest import ingest
from leptonhub.platform.schema import Schema
from malformed import CASES, FILE_CASES, NAME_CASES, OPTION_CASES, BODY_CASES, GOOD_CSV

RESULTS = Path(__file__).resolve().parents[1]/'bench'/'results'/'malformed.json'
CALLS = [(c, via) for c in CASES for via in c.via]
FIGURES = {'calls': {}, 'seconds': 0.0}

# ---------------------------------------------------------------- the hub and its snapshot

@pytest.fixture(scope='module')
def served(tmp_path_factory):
    "A hub holding one good dataset, served on loopback: (hub, url, admin token)."
    home = tmp_path_factory.mktemp('malformed')/'hub'
    hub = Hub.init(home)
    src = tmp_path_factory.mktemp('good')/'good.csv'
    src.write_text(GOOD_CSV)
    hub.publish('clinic', [src])
    with running(hub) as url: yield hub, url, hub.issue_token('admin')

def tables(home:Path) -> dict[str, int]:
    "Rows in every table of the hub's SQLite catalog, read without writing."
    con = sqlite3.connect(f"file:{home/'catalog.db'}?mode=ro", uri=True)
    try: return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                 for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally: con.close()

def snapshot(home:Path) -> tuple[dict, dict]:
    "Every file of the hub home but the catalog database, by content hash; and the catalog's row counts."
    files = {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.rglob('*'))
             if p.is_file() and not p.name.startswith('catalog.db')}
    return files, tables(home)

def assert_nothing_written(home:Path, before:tuple, audit_rows:int=0):
    "The hub home is as `before` (with `audit_rows` more audit entries); no temporary file is left anywhere in it."
    files, rows = snapshot(home)
    left = [p for p in home.rglob('*') if p.name.endswith(('.tmp', '.old')) or (p.name.startswith('.') and p.name != '.')]
    assert left == [], f'temporary files left: {left}'
    assert files == before[0], f'files changed: {set(files) ^ set(before[0]) or "contents"}'
    expected = dict(before[1]); expected['audit'] += audit_rows
    assert rows == expected, f'catalog rows changed: { {t: (expected.get(t), n) for t, n in rows.items() if expected.get(t) != n} }'

def assert_says(message:str, case, made:dict, via:str):
    "The message holds every word the case expects (a bad name: said as the library says it), the file's path where one is named, and no Python internals."
    if not (case.kind == 'name' and via in ('read', 'http')):   # there the name is checked against the route's and the body's rules above
        for w in case.says: assert w in message, f'{w!r} not in: {message}'
    if case.kind == 'file' and case.names_file:
        named = made.get('bad', made['paths'][0])
        assert str(named) in message, f'{named} not named in: {message}'
    assert 'Traceback' not in message and '<function' not in message and 'object at 0x' not in message, message

def publish_kw(made:dict) -> dict:
    "`publish` keywords of an option case, with a schema file read the way the CLI reads it."
    kw = dict(made.get('kw', {}))
    if isinstance(kw.get('schema'), str) and kw['schema'].startswith('FILE:'): kw['schema'] = Schema.from_json(kw['schema'][5:])
    return kw

# ---------------------------------------------------------------- one test per (case, entry point)

def run_call(case, via, made, served, capsys, monkeypatch):
    "Send `made` in through entry point `via` and check the refusal; return the message."
    hub, url, token = served
    home = hub.settings.home
    before = snapshot(home)
    paths = [str(p) for p in made.get('paths', [])]
    name = made.get('name', 'site')
    if via == 'ingest':
        with pytest.raises(LeptonError) as e: ingest(paths, **made.get('kw', {}))
        assert isinstance(e.value, case.error), f'{type(e.value).__name__}: {e.value}'
        msg = str(e.value)
    elif via == 'publish':
        def call(): return hub.publish(name, paths, **publish_kw(made))
        with pytest.raises(LeptonError) as e: call()
        assert isinstance(e.value, case.error), f'{type(e.value).__name__}: {e.value}'
        msg = str(e.value)
    elif via == 'cli':
        monkeypatch.setenv('LEPTONHUB_HOME', str(home))
        capsys.readouterr()
        code = main(['publish', name, *paths, *made.get('argv', [])])
        out, err = capsys.readouterr()
        assert code == 1 and out == '', (code, out, err)
        assert err.startswith('leptonhub: error: ') and err.endswith('\n') and err.count('\n') == 1, repr(err)
        msg = err
    elif via == 'read':
        with pytest.raises(NotFoundError) as e: hub.card(name)
        assert repr(name) in str(e.value), str(e.value)
        with pytest.raises(NotFoundError): hub.read(name)
        msg = str(e.value)                          # a name no dataset can have is simply not found, and named
    elif via == 'http':
        with httpx.Client(base_url=url, headers={'Authorization': f'Bearer {token}'}, timeout=60) as http:
            if case.kind == 'body': responses = [http.post('/api/v1/datasets/clinic/grants', content=made['body'], headers=made['headers'])]
            else: responses = [http.get(f'/api/v1/datasets/{quote(name, safe="")}/card'),
                               http.post('/api/v1/datasets/clinic/grants', json={'to': name, 'purpose': 'p', 'view': 'columns', 'columns': ['age']})]
        for r in responses:
            assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
            doc = r.json()
            assert set(doc) == {'code', 'message'} and doc['message'], doc
        msg = ' / '.join(r.json()['message'] for r in responses)
        if case.kind == 'name':
            assert responses[0].status_code in (404, 422) and responses[1].status_code == 422 and 'to' in responses[1].json()['message'], \
                [(r.status_code, r.text[:200]) for r in responses]
        assert_nothing_written(home, before, audit_rows=len(responses))
        return msg
    assert_nothing_written(home, before)
    return msg

@pytest.mark.parametrize('case,via', CALLS, ids=[f'{c.name}-{v}' for c, v in CALLS])
def test_refused_clearly_and_nothing_written(case, via, served, tmp_path, capsys, monkeypatch):
    "One malformed input through one entry point: a typed error (or exit 1, or a 4xx) whose message names the problem; the hub unchanged."
    t0 = time.perf_counter()
    made = case.make(tmp_path/'in')
    inputs = {str(p) for p in (tmp_path/'in').rglob('*')} if (tmp_path/'in').exists() else set()
    msg = run_call(case, via, made, served, capsys, monkeypatch)
    assert_says(msg, case, made, via)
    assert ({str(p) for p in (tmp_path/'in').rglob('*')} if (tmp_path/'in').exists() else set()) == inputs    # nothing written beside the input
    FIGURES['calls'][f'{case.name}:{via}'] = {'seconds': round(time.perf_counter() - t0, 3), 'message': msg.strip()[:300]}
    FIGURES['seconds'] += time.perf_counter() - t0

def test_corpus_size():
    "The corpus holds at least 50 named inputs over every kind, and every case has an entry point."
    assert len(CASES) >= 50 and all(c.via for c in CASES)
    assert {c.kind for c in CASES} == {'file', 'name', 'option', 'body'}
    assert len(FILE_CASES) >= 30 and len(NAME_CASES) >= 10

@pytest.fixture(scope='module', autouse=True)
def figures():
    "After the module, when every call ran in this process, write the figures to `bench/results/malformed.json`."
    yield
    if len(FIGURES['calls']) != len(CALLS): return
    by_kind = {k: sum(1 for c in CASES if c.kind == k) for k in ('file', 'name', 'option', 'body')}
    doc = {'inputs': len(CASES), 'by_kind': by_kind, 'calls': len(CALLS),
           'by_entry_point': {v: sum(1 for _, w in CALLS if w == v) for v in ('ingest', 'publish', 'cli', 'read', 'http')},
           'clear_errors': len(FIGURES['calls']), 'half_written': 0, 'seconds': round(FIGURES['seconds'], 1), 'messages': FIGURES['calls']}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(doc, indent=2, ensure_ascii=False) + '\n')
