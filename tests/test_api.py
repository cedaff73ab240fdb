"The hub over HTTP: a real uvicorn server on a loopback port, our client, the stock Delta Sharing client and the DataLoader."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import httpx, numpy as np, pandas as pd, pytest, torch
import delta_sharing
from leptonhub.core import AccessDenied, NotFoundError, InputError
from leptonhub.platform.hub import Hub
from leptonhub.platform.api import running, ARROW_TYPE
from leptonhub.platform.client import RemoteHub
from leptonhub.platform.delta import profile, table_address, sign_link, link_key
from leptonhub.platform.data import DataLoader
import pyarrow as pa

QI = ['age', 'sex', 'zip']

def clinic_table(n=600, seed=0):
    "A generated clinic table: quasi-identifiers, a diagnosis and a lab value."
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'patient': [f'P{i:05d}' for i in range(n)], 'age': rng.integers(20, 90, n), 'sex': rng.choice(['F', 'M'], n),
                         'zip': rng.choice(['10115', '10117', '10119', '10178', '10179'], n), 'chol': rng.normal(220, 40, n).round(1),
                         'diagnosis': rng.choice(['healthy', 'angina', 'infarct'], n, p=[0.6, 0.3, 0.1])})

@pytest.fixture(scope='module')
def served(tmp_path_factory):
    "A hub with one dataset, served on a random loopback port: (hub, url, home)."
    home = tmp_path_factory.mktemp('api')/'hub'
    hub = Hub.init(home)
    hub.publish('clinic', clinic_table(), keys=['patient'], qi=QI)
    with running(hub) as url: yield hub, url, home

def grant(hub, who, view='columns', **params):
    params = params or {'columns': ['age', 'sex', 'chol', 'diagnosis']}
    return hub.grant('clinic', to=who, purpose='tests', view=view, **params)

def http(url, token=None):
    return httpx.Client(base_url=url, headers={'Authorization': f'Bearer {token}'} if token else {})

def last_http_refusal(hub):
    log = hub.audit()
    row = log[log.action == 'http'].iloc[-1]
    return row.actor, row.detail['status']

# --- REST ---

def test_read_formats_and_window(served):
    hub, url, _ = served
    g = grant(hub, 'fmt-lab')
    c = http(url, g['token'])
    local = hub.as_principal(g['token']).read('clinic', view='columns')
    r = c.get('/api/v1/datasets/clinic/data', params={'view': 'columns'})
    assert r.headers['content-type'] == ARROW_TYPE
    pd.testing.assert_frame_equal(pa.ipc.open_stream(r.content).read_pandas(), local)
    r = c.get('/api/v1/datasets/clinic/data', params={'view': 'columns', 'format': 'csv', 'select': 'age,chol', 'offset': 10, 'limit': 7})
    page = pd.read_csv(__import__('io').StringIO(r.text))
    assert page.shape == (7, 2) and page.age.tolist() == local.age.iloc[10:17].tolist()
    assert r.headers['x-rows'] == '7'

def test_remote_client_equals_local_hub(served):
    hub, url, home = served
    g = grant(hub, 'same-lab')
    local, remote = Hub(home, token=g['token']), Hub.connect(url, g['token'])
    pd.testing.assert_frame_equal(remote.datasets(), local.datasets())
    pd.testing.assert_frame_equal(remote.versions('clinic'), local.versions('clinic'))
    pd.testing.assert_frame_equal(remote.read('clinic', view='columns'), local.read('clinic', view='columns'))
    pd.testing.assert_frame_equal(remote.read('clinic', view='columns', select=['chol'], offset=5, limit=3), local.read('clinic', view='columns', select=['chol'], offset=5, limit=3))
    assert remote.card('clinic')['rows'] == local.card('clinic')['rows'] == 600
    batches = list(remote.iter_batches('clinic', view='columns'))
    assert sum(len(b) for b in batches) == 600

def test_refusals_map_to_errors(served):
    hub, url, _ = served
    g = grant(hub, 'err-lab')
    lab = Hub.connect(url, g['token'])
    with pytest.raises(AccessDenied, match='no grant to the raw view'): lab.read('clinic')
    with pytest.raises(NotFoundError): lab.read('lungs')
    with pytest.raises(InputError, match="no columns \\['zip'\\]"): lab.read('clinic', view='columns', select=['zip'])
    with pytest.raises(AccessDenied, match='unknown token'): Hub.connect(url, 'lh_' + 'x' * 43)
    hub.revoke('clinic', 'err-lab')
    with pytest.raises(AccessDenied, match='was revoked'): lab.read('clinic', view='columns')

def test_status_codes_and_audit(served):
    hub, url, _ = served
    g = grant(hub, 'codes-lab')
    before = len(hub.audit().query("action == 'http'"))
    c, anon = http(url, g['token']), http(url)
    owner = http(url, hub.issue_token('admin'))
    cases = [(anon.get('/api/v1/datasets'), 401, 'anonymous'),
             (anon.get('/api/v1/datasets', headers={'Authorization': 'Basic abc'}), 401, 'anonymous'),
             (c.get('/api/v1/datasets/clinic/data'), 403, 'codes-lab'),
             (c.post('/api/v1/datasets/clinic/grants', json={'to': 'x', 'purpose': 'y'}), 403, 'codes-lab'),
             (c.get('/api/v1/datasets/nope/card'), 404, 'codes-lab'),
             (c.get('/api/v1/datasets/..%2F..%2Fetc%2Fpasswd/card'), 404, 'codes-lab'),
             (c.get('/api/v1/datasets/x;DROP TABLE grants/card'), 422, 'codes-lab'),
             (c.get("/api/v1/datasets/clinic' OR '1'='1/versions"), 422, 'codes-lab'),
             (c.get('/api/v1/no/such/route'), 404, 'codes-lab'),
             (c.put('/api/v1/datasets'), 405, 'codes-lab'),
             (c.get('/api/v1/datasets/clinic/data', params={'view': 'columns', 'limit': 'many'}), 422, 'codes-lab'),
             (c.get('/api/v1/datasets/clinic/data', params={'view': 'columns', 'format': 'xlsx'}), 422, 'codes-lab'),
             (owner.post('/api/v1/datasets/clinic/grants', content=b'{"to": "x", "purpose": ', headers={'content-type': 'application/json'}), 422, 'admin'),
             (owner.post('/api/v1/datasets/clinic/grants', content=b'to=x&purpose=y', headers={'content-type': 'application/x-www-form-urlencoded'}), 415, 'admin'),
             (owner.post('/api/v1/datasets/clinic/grants', content=b'{"to":"x","purpose":"' + b'a' * 2_000_000 + b'"}', headers={'content-type': 'application/json'}), 413, 'admin'),
             (owner.post('/api/v1/datasets/clinic/grants', json={'to': 'x', 'purpose': 'y', 'admin': True}), 422, 'admin'),
             (owner.post('/api/v1/datasets/clinic/grants', json={'to': 'x', 'purpose': 'y', 'view': 'everything'}), 422, 'admin'),
             (owner.delete('/api/v1/datasets/clinic/grants/nobody'), 404, 'admin')]
    for r, status, who in cases:
        assert r.status_code == status, (r.request.url, r.status_code, r.text)
        body = r.json()
        assert set(body) == {'code', 'message'} and body['message'] and 'Traceback' not in r.text
    refused = hub.audit().query("action == 'http'").iloc[before:]
    assert list(zip(refused.actor, refused.detail.map(lambda d: d['status']))) == [(who, status) for _, status, who in cases]
    assert cases[0][0].headers['www-authenticate'] == 'Bearer'
    assert hub.verify_audit()

def test_chunked_oversized_body_refused(served):
    hub, url, _ = served
    owner = http(url, hub.issue_token('admin'))
    def body():
        for _ in range(40): yield b'x' * 65536
    r = owner.post('/api/v1/datasets/clinic/grants', content=body(), headers={'content-type': 'application/json'})
    assert r.status_code == 413 and r.json()['code'] == 'too_large'

def test_owner_grants_and_revokes_remotely(served):
    hub, url, _ = served
    owner = Hub.connect(url, hub.issue_token('admin'))
    g = owner.grant('clinic', to='remote-lab', purpose='remote grant', view='anonymized', qi=QI, k=5, drop=['patient'], profile=True)
    assert g['profile']['endpoint'] == f'{url}/delta-sharing' and g['profile']['bearerToken'] == g['token']
    df = Hub.connect(url, g['token']).read('clinic', view='anonymized')
    assert df.groupby(QI, observed=True).size().min() >= 5 and 'patient' not in df
    assert owner.revoke('clinic', 'remote-lab') == 1
    with pytest.raises(AccessDenied): Hub.connect(url, g['token']).read('clinic', view='anonymized')
    assert owner.verify_audit().ok

def test_arrow_stream_holds_the_whole_view(served):
    hub, url, _ = served
    g = grant(hub, 'stream-lab')
    r = http(url, g['token']).get('/api/v1/datasets/clinic/data', params={'view': 'columns'})
    reader = pa.ipc.open_stream(r.content)
    assert reader.read_all().num_rows == 600

# --- Delta Sharing ---

@pytest.fixture
def share_file(served, tmp_path):
    hub, url, _ = served
    def make(who, view='anonymized', **params):
        g = hub.grant('clinic', to=who, purpose='delta', view=view, **(params or {'qi': QI, 'k': 5, 'drop': ['patient']}))
        f = tmp_path/f'{who}.share'
        f.write_text(json.dumps(profile(url, g['token'])))
        return g, f
    return make

def test_stock_client_reads_exactly_the_view(served, share_file):
    hub, url, _ = served
    g, f = share_file('delta-lab')
    client = delta_sharing.SharingClient(str(f))
    assert [(t.share, t.schema, t.name) for t in client.list_all_tables()] == [('leptonhub', 'clinic', 'anonymized')]
    got = delta_sharing.load_as_pandas(f'{f}#{table_address("clinic", "anonymized")}')
    want = hub.as_principal(g['token']).read('clinic', view='anonymized')
    assert list(got.columns) == list(want.columns) and 'patient' not in got
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert delta_sharing.load_as_pandas(f'{f}#leptonhub.clinic.anonymized', limit=10).shape == (10, want.shape[1])

def test_delta_no_grant_and_revocation(served, share_file):
    hub, url, _ = served
    g, f = share_file('delta-revoked')
    with pytest.raises(Exception, match='404'): delta_sharing.load_as_pandas(f'{f}#leptonhub.clinic.raw')
    c = http(url, g['token'])
    lines = c.post('/delta-sharing/shares/leptonhub/schemas/clinic/tables/anonymized/query', json={}).text.splitlines()
    file_url = json.loads(lines[2])['file']['url']
    assert httpx.get(file_url).status_code == 200
    hub.revoke('clinic', 'delta-revoked')
    assert httpx.get(file_url).status_code == 403                       # an issued link dies with its grant
    assert c.post('/delta-sharing/shares/leptonhub/schemas/clinic/tables/anonymized/query', json={}).status_code == 404
    assert http(url).get('/delta-sharing/shares').status_code == 401

def test_delta_links_tampered_or_expired(served, share_file):
    hub, url, _ = served
    g, f = share_file('delta-links')
    lines = http(url, g['token']).post('/delta-sharing/shares/leptonhub/schemas/clinic/tables/anonymized/query', json={}).text.splitlines()
    good = json.loads(lines[2])['file']['url']
    base, link = good.rsplit('/', 1)
    claims, sig = link.split('.')
    other_grant = hub.grant('clinic', to='delta-other', purpose='x', view='raw')['grant']
    forged_claims = sign_link(b'not the key' * 3, other_grant, 1, 0).split('.')[0]
    expired = sign_link(link_key(hub), g['grant'], 1, 0, seconds=-1)
    for bad in [f'{base}/{claims}.{sig[:-2]}AA', f'{base}/{forged_claims}.{sig}', f'{base}/{expired}', f'{base}/nonsense']:
        r = httpx.get(bad)
        assert r.status_code == 403 and r.json()['code'] == 'forbidden' and len(r.content) < 300
        assert last_http_refusal(hub) == ('anonymous', 403)
    r = httpx.get(good, headers={'Range': 'bytes=0-3'})
    assert (r.status_code, r.content) == (206, b'PAR1')
    size = json.loads(lines[2])['file']['size']
    assert httpx.head(good).headers['content-length'] == str(size)
    assert httpx.get(good, headers={'Range': f'bytes={size}-'}).status_code == 416

def test_delta_metadata_and_version(served, share_file):
    hub, url, _ = served
    g, _ = share_file('delta-meta')
    c = http(url, g['token'])
    r = c.get('/delta-sharing/shares/leptonhub/schemas/clinic/tables/anonymized/version')
    assert r.headers['delta-table-version'] == '1'
    meta = json.loads(c.get('/delta-sharing/shares/leptonhub/schemas/clinic/tables/anonymized/metadata').text.splitlines()[1])['metaData']
    fields = [x['name'] for x in json.loads(meta['schemaString'])['fields']]
    assert fields == ['age', 'sex', 'zip', 'chol', 'diagnosis', 'source']
    assert meta['configuration']['leptonhub.view'] == 'anonymized' and float(meta['configuration']['leptonhub.Q']) > 0
    assert c.get('/delta-sharing/shares/other').status_code == 404

# --- DataLoader ---

@pytest.mark.parametrize('workers', [0, 2])
@pytest.mark.parametrize('streaming', [False, True])
def test_dataloader_over_remote_view(served, workers, streaming):
    hub, url, _ = served
    g = grant(hub, f'dl-lab-{workers}-{int(streaming)}')
    remote = Hub.connect(url, g['token'])
    loader = DataLoader(remote, 'clinic', view='columns', target='diagnosis', batch_size=50, num_workers=workers, streaming=streaming)
    enc = loader.encoder
    assert (enc.numeric, enc.categorical, enc.classes) == (['age', 'chol'], ['sex'], ['angina', 'healthy', 'infarct'])
    Xs, ys = zip(*loader)
    num, cat, y = torch.cat([x['num'] for x in Xs]), torch.cat([x['cat'] for x in Xs]), torch.cat(ys)
    df = remote.read('clinic', view='columns')
    order = np.lexsort((df.chol.to_numpy(), df.age.to_numpy()))
    got_order = np.lexsort((num[:, 1].numpy(), num[:, 0].numpy()))
    assert (num.dtype, cat.dtype, y.dtype) == (torch.float32, torch.int64, torch.int64) and len(y) == 600
    want_age = (df.age.to_numpy()[order] - enc.means['age']) / enc.scales['age']
    np.testing.assert_allclose(num[got_order, 0].numpy(), want_age, rtol=1e-5, atol=1e-5)
    want_y = df.diagnosis.map({c: i for i, c in enumerate(enc.classes)}).to_numpy()[order]
    assert y[got_order].tolist() == want_y.tolist()

def test_cli_serve_subprocess(tmp_path):
    home = tmp_path/'hub'
    env = {**os.environ, 'LEPTONHUB_HOME': str(home)}
    cli = [str(Path(sys.executable).parent/'leptonhub')]
    assert subprocess.run([*cli, 'init'], env=env, capture_output=True).returncode == 0
    import socket
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    p = subprocess.Popen([*cli, 'serve', '--port', str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                if httpx.get(f'http://127.0.0.1:{port}/health').json() == {'status': 'ok'}: break
            except httpx.TransportError: time.sleep(0.05)
        else: pytest.fail('leptonhub serve did not answer')
        assert httpx.get(f'http://127.0.0.1:{port}/api/v1/datasets').status_code == 401
        assert '/api/v1/datasets/{name}/data' in httpx.get(f'http://127.0.0.1:{port}/openapi.json').json()['paths']
    finally:
        p.send_signal(signal.SIGINT); p.wait(10)
    assert 'serving the hub at' in p.stdout.read()
