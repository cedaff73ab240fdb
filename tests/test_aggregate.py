"Differentially private queries through the hub, the API and the CLI; personal data in text at publishing time."
import json, subprocess, sys, threading
from pathlib import Path
import httpx, numpy as np, pandas as pd, pytest
from leptonhub.core import AccessDenied, InputError
from leptonhub.platform.hub import Hub
from leptonhub.platform.api import running
from leptonhub.privacy.dp import BudgetExceeded

LEPTONHUB = Path(sys.executable).parent/'leptonhub'

def visits(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'age': rng.integers(18, 95, n), 'ward': rng.choice(['cardio', 'neuro', 'onco'], n), 'stay': rng.exponential(4, n).round(1)})

@pytest.fixture
def hub(tmp_path):
    h = Hub.init(tmp_path/'hub')
    h.publish('visits', visits())
    return h

def office(hub, epsilon=1.0, **params):
    g = hub.grant('visits', to='office', purpose='statistics', view='aggregate', epsilon=epsilon, **params)
    return hub.as_principal(g['token']), g

def test_answers_are_near_the_truth_and_charged(hub):
    o, _ = office(hub, epsilon=3.0)
    df = hub.read('visits')
    mean = o.query('visits', kind='mean', column='age', epsilon=1.0, bounds=[18, 95])
    assert abs(mean['value'] - df.age.mean()) < 0.5 and mean['epsilon'] == 1.0
    hist = o.query('visits', kind='histogram', column='ward', epsilon=1.0, bins=['cardio', 'neuro', 'onco'])
    truth = df.ward.value_counts()
    assert set(hist['value']) == {'cardio', 'neuro', 'onco'} and max(abs(hist['value'][w] - truth[w]) for w in truth.index) < 20
    b = o.budget('visits')
    assert b['queries'] == 2 and b['spent']['epsilon'] == pytest.approx(2.0) and b['remaining']['epsilon'] == pytest.approx(1.0)

def test_budget_refusal_says_what_is_left_and_is_audited(hub):
    o, g = office(hub, epsilon=0.5)
    o.query('visits', kind='count', epsilon=0.4)
    preview = o.query_cost('visits', kind='count', epsilon=0.2)
    assert preview['fits'] is False and preview['budget']['remaining']['epsilon'] == pytest.approx(0.1)
    with pytest.raises(BudgetExceeded, match='left') as e: o.query('visits', kind='count', epsilon=0.2)
    assert '0.1' in str(e.value)
    o.query('visits', kind='count', epsilon=0.1)          # what is left can still be spent
    log = hub.audit('visits').query("action == 'query'")
    assert log.outcome.tolist() == ['ok', 'denied', 'ok'] and (log.actor == 'office').all()
    assert o.budget('visits')['remaining']['epsilon'] == pytest.approx(0.0, abs=1e-12)

def test_bad_queries_are_refused_without_charge(hub):
    o, _ = office(hub, epsilon=1.0, columns=['age', 'ward'])
    for spec, msg in [({'kind': 'mean', 'column': 'age', 'epsilon': -1, 'bounds': [0, 1]}, 'epsilon'),
                      ({'kind': 'mean', 'column': 'age', 'epsilon': 0, 'bounds': [0, 1]}, 'epsilon'),
                      ({'kind': 'mean', 'column': 'age', 'epsilon': 0.1}, 'bounds'),
                      ({'kind': 'sum', 'column': 'ward', 'epsilon': 0.1, 'bounds': [0, 1]}, 'numeric'),
                      ({'kind': 'median', 'column': 'age', 'epsilon': 0.1}, 'kind'),
                      ({'kind': 'count', 'epsilon': 0.1, 'colour': 'red'}, 'colour'),
                      ({'kind': 'mean', 'column': 'stay', 'epsilon': 0.1, 'bounds': [0, 30]}, r"covers \['age', 'ward'\], not 'stay'")]:
        with pytest.raises((InputError, AccessDenied), match=msg): o.query('visits', spec)
    assert o.budget('visits')['queries'] == 0
    with pytest.raises(AccessDenied, match='releases no rows'): o.read('visits', view='aggregate')
    with pytest.raises(AccessDenied, match='no grant to the raw view'): o.read('visits')

def test_concurrent_queries_never_overspend(hub):
    _, g = office(hub, epsilon=1.0)
    results = []
    def ask():
        h = Hub(hub.settings.home, token=g['token'])
        try: results.append(h.query('visits', kind='count', epsilon=0.3)['epsilon'])
        except BudgetExceeded: results.append(None)
    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert results.count(0.3) == 3 and results.count(None) == 3
    assert hub.as_principal(g['token']).budget('visits')['spent']['epsilon'] == pytest.approx(0.9)

def test_aggregate_grant_checks(hub):
    with pytest.raises(InputError, match='epsilon'): hub.grant('visits', to='x', purpose='p', view='aggregate', epsilon=0)
    with pytest.raises(InputError, match='needs epsilon'): hub.grant('visits', to='x', purpose='p', view='aggregate')
    with pytest.raises(InputError, match="no columns \\['zip'\\]"): hub.grant('visits', to='x', purpose='p', view='aggregate', epsilon=1, columns=['zip'])
    with pytest.raises(InputError, match='manages visits'): hub.budget('visits')
    assert 'value' in hub.query('visits', kind='count', epsilon=0.1)      # the owner asks without a budget

def test_http_status_codes(hub):
    _, g = office(hub, epsilon=0.5)
    with running(hub) as url:
        c = httpx.Client(base_url=url, headers={'Authorization': f"Bearer {g['token']}"})
        ok = c.post('/api/v1/datasets/visits/query', json={'kind': 'count', 'epsilon': 0.4})
        assert ok.status_code == 200 and ok.json()['budget']['queries'] == 1
        over = c.post('/api/v1/datasets/visits/query', json={'kind': 'count', 'epsilon': 0.4})
        assert over.status_code == 403 and 'left' in over.json()['message']
        assert c.post('/api/v1/datasets/visits/query', json={'kind': 'count', 'epsilon': 'lots'}).status_code == 422
        assert c.post('/api/v1/datasets/visits/query', json={'kind': 'count', 'epsilon': -1}).status_code == 422
        assert c.post('/api/v1/datasets/visits/query', json={'kind': 'mode', 'epsilon': 0.1}).status_code == 422
        assert c.post('/api/v1/datasets/visits/query/cost', json={'kind': 'count', 'epsilon': 0.05}).json()['fits'] is True
        assert c.get('/api/v1/datasets/visits/data', params={'view': 'aggregate'}).status_code == 403
        assert c.get('/delta-sharing/shares/leptonhub/all-tables').json() == {'items': []}

def test_pii_policies_at_publish(hub):
    notes = pd.DataFrame({'id': [1, 2, 3], 'note': ['stable', 'phone 13912345678', '邮箱 a.b@example.com']})
    hub.publish('notes', notes)
    card = hub.card('notes')
    assert card['policy']['pii']['rows_with_pii'] == 2 and 'personal data in 2 records' in card['limitations']
    with pytest.raises(InputError, match='hold personal data'): hub.publish('notes', notes, pii='refuse')
    assert len(hub.versions('notes')) == 1                 # nothing half-published
    hub.publish('notes', notes, pii='pseudonym')
    red = hub.read('notes').note.tolist()
    assert red[0] == 'stable' and '13912345678' not in red[1] and red[1].startswith('phone <PHONE_') and 'example.com' not in red[2]
    with pytest.raises(InputError, match='unknown PII policy'): hub.publish('notes', notes, pii='scrub')

def test_cli_pii_errors(tmp_path):
    f = tmp_path/'t.csv'
    pd.DataFrame({'text': ['IBAN GB82 WEST 1234 5698 7654 32', 'card 4539 1488 0343 6467']}).to_csv(f, index=False)
    r = subprocess.run([str(LEPTONHUB), 'pii', str(f), '--json'], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)['counts']['IBAN'] == 1 and json.loads(r.stdout)['counts']['CARD'] == 1
    r = subprocess.run([str(LEPTONHUB), 'pii', str(f), '--column', 'body'], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == ["leptonhub: error: no column 'body'; the columns are ['text'] (column 'body')"]
    r = subprocess.run([str(LEPTONHUB), 'pii', str(tmp_path/'none.csv')], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([str(LEPTONHUB), 'pii', str(f), '--column', 'body', '--redact', str(tmp_path/'out.csv')], capture_output=True, text=True)
    assert r.returncode == 1 and not (tmp_path/'out.csv').exists()          # a refused redaction leaves no file behind
