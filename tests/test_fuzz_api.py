"""The REST API fuzzed from its own OpenAPI description with schemathesis, against a real uvicorn server on loopback.

Every operation the server describes at `/openapi.json` is called with generated requests as the dataset's owner and as a
consumer holding three grants. Half of the cases name what exists (the dataset, the share, its tables, granted views, real
columns) so that they reach the hub's logic rather than stopping at a 404; grant and query bodies are also drawn from the
views' real parameters. Every answer must be a documented status with a body that fits the described schema, and none may be
a 5xx. A second pass sends requests that break the schema, which must all be refused with a 4xx.

`LEPTONHUB_FUZZ_EXAMPLES` sets the examples per operation and caller (12 by default; `make stress` asks for more). The figures
of the run go to `bench/results/fuzz.json`."""
from __future__ import annotations
import gc, json, os, time
from collections import Counter
from pathlib import Path
import httpx, numpy as np, pandas as pd, pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
                                 response_headers_conformance, negative_data_rejection)
from leptonhub.core import atomic_write
from leptonhub.platform.hub import Hub
from leptonhub.platform.api import running, ERROR_RESPONSES

EXAMPLES = int(os.environ.get('LEPTONHUB_FUZZ_EXAMPLES', 12))
RESULTS = Path(__file__).resolve().parents[1]/'bench'/'results'/'fuzz.json'
POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]
NEGATIVE_CHECKS = [not_a_server_error, negative_data_rejection, status_code_conformance, content_type_conformance, response_schema_conformance]
VIOLATIONS = {'JsonSchemaError', 'MalformedJson', 'UndefinedStatusCode', 'UndefinedContentType', 'MissingContentType', 'MalformedMediaType',
              'MissingHeaders', 'DiscriminatorMismatch', 'ContentDeserializationError'}      # answers that break the described schema
QI = ['age', 'sex', 'zip']
VIEWS = ['raw', 'columns', 'pseudonymized', 'anonymized', 'aggregate', 'everything']

def clinic(n=300, seed=0) -> pd.DataFrame:
    "A generated clinic table: an identifier, quasi-identifiers, a lab value and a diagnosis."
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'patient': [f'P{i:05d}' for i in range(n)], 'age': rng.integers(20, 90, n), 'sex': rng.choice(['F', 'M'], n),
                         'zip': rng.choice(['10115', '10117', '10119'], n), 'chol': rng.normal(220, 40, n).round(1),
                         'diagnosis': rng.choice(['healthy', 'angina', 'infarct'], n)})

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A served hub: an owner who published `clinic`, a consumer `lab` with columns, anonymized and aggregate grants; the schema as served."
    hub = Hub.init(tmp_path_factory.mktemp('fuzz')/'hub')
    owner_token = hub.add_principal('clinic-owner', role='owner')
    owner = hub.as_principal(owner_token)
    owner.publish('clinic', clinic(), keys=['patient'], qi=QI)
    lab = owner.grant('clinic', to='lab', purpose='fuzzing', view='columns', columns=['age', 'sex', 'chol'])['token']
    owner.grant('clinic', to='lab', purpose='fuzzing', view='anonymized', qi=QI, k=5, drop=['patient'], token=False)
    owner.grant('clinic', to='lab', purpose='fuzzing', view='aggregate', epsilon=1e6, token=False)
    owner.grant('clinic', to='spare', purpose='fuzzing', view='columns', columns=['age'], token=False)
    tokens = {'owner': owner_token, 'consumer': lab}
    with running(hub) as url:
        schema = schemathesis.openapi.from_url(f'{url}/openapi.json')
        http = {who: httpx.Client(base_url=url, headers={'Authorization': f'Bearer {t}'}, timeout=30) for who, t in tokens.items()}
        yield {'hub': hub, 'url': url, 'schema': schema, 'doc': httpx.get(f'{url}/openapi.json').json(), 'tokens': tokens, 'http': http, 'figures': {}}
        for c in http.values(): c.close()

# ---------------------------------------------------------------- what exists, for cases that reach the hub's logic

REAL_PATH = {'name': 'clinic', 'share': 'leptonhub', 'schema': 'clinic', 'table': st.sampled_from(['columns', 'anonymized', 'aggregate']),
             'principal': st.sampled_from(['spare', 'nobody'])}      # never the consumer whose grants later tests use
json_values = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
                           lambda xs: st.lists(xs, max_size=4) | st.dictionaries(st.text(max_size=8), xs, max_size=4), max_leaves=12)
columns = st.lists(st.sampled_from(['age', 'sex', 'zip', 'chol', 'diagnosis', 'patient', 'nope']), max_size=4)
VIEW_PARAMS = {'qi': columns, 'k': st.integers(-2, 400) | json_values, 'sensitive': st.sampled_from(['diagnosis', 'chol', 'age', 'nope']),
               'l': st.integers(0, 5) | st.floats(0, 4), 'l_kind': st.sampled_from(['distinct', 'entropy', 'recursive', 'x']),
               'c': st.floats(0, 3), 't': st.floats(0, 1) | json_values, 'max_suppression': st.floats(-1, 2) | json_values,
               'method': st.sampled_from(['mondrian', 'mondrian-strict', 'greedy', 'fast']), 'drop': columns, 'identifiers': columns,
               'hierarchies': st.dictionaries(st.sampled_from(['age', 'zip', 'nope']), json_values, max_size=2),
               'epsilon': st.floats(-1, 1e9) | json_values, 'delta': st.floats(-1, 1) | json_values,
               'composition': st.sampled_from(['zcdp', 'basic', 'x']), 'columns': columns}
grant_bodies = st.fixed_dictionaries({'to': st.sampled_from(['lab', 'new-lab', 'spare']), 'purpose': st.text(min_size=1, max_size=20),
                                      'view': st.sampled_from(VIEWS)},
                                     optional={'params': st.dictionaries(st.sampled_from(sorted(VIEW_PARAMS)), st.none(), max_size=5).flatmap(
                                                   lambda d: st.fixed_dictionaries({k: VIEW_PARAMS[k] for k in d})),
                                               'expires': st.sampled_from(['30d', '1s', '0s', '-3d', 'soon']), 'profile': st.booleans()})
query_bodies = st.fixed_dictionaries({'kind': st.sampled_from(['count', 'sum', 'mean', 'histogram', 'quantile']),
                                      'epsilon': st.floats(1e-6, 1e300) | st.sampled_from([0.1, 1.0])},
                                     optional={'column': st.sampled_from(['age', 'chol', 'sex', 'nope']), 'delta': st.floats(0, 1),
                                               'bounds': st.lists(st.floats(-1e6, 1e6) | st.floats(), max_size=3),
                                               'bins': st.lists(st.floats(0, 100) | st.text(max_size=5), max_size=6) | st.integers(0, 10),
                                               'q': st.floats(-1, 2), 'mechanism': st.sampled_from(['laplace', 'gaussian', 'exponential'])})

def real_bodies(op) -> st.SearchStrategy|None:
    "Bodies for `op` drawn from the hub's own vocabulary (views and their parameters, query kinds and columns), where it takes one."
    if op.method.upper() != 'POST': return None
    if op.path.endswith('/grants'): return grant_bodies
    if op.path.endswith(('/query', '/query/cost')) and op.path.startswith('/api'): return query_bodies
    if op.path.endswith('/query'): return st.fixed_dictionaries({}, optional={'version': json_values | st.integers(-2, 3)})
    return None

@st.composite
def cases(draw, op, mode:GenerationMode):
    "A generated request for `op`: as the schema allows (or breaks it, in the negative mode), and half the time naming what exists."
    if mode is GenerationMode.NEGATIVE or not draw(st.booleans()): return draw(op.as_strategy(generation_mode=mode))
    real = {p: (draw(v) if isinstance(v, st.SearchStrategy) else v) for p, v in REAL_PATH.items() if '{' + p + '}' in op.path}
    kw = {'path_parameters': real} if real else {}
    if (bodies := real_bodies(op)) is not None and draw(st.booleans()): kw['body'] = draw(bodies)
    if op.path.endswith('/data'): kw['query'] = {'view': draw(st.sampled_from(VIEWS)), 'format': draw(st.sampled_from(['arrow', 'csv', 'parquet']))}
    return draw(op.as_strategy(generation_mode=mode, **kw))

# ---------------------------------------------------------------- the fuzz run

SURFACES = {'rest': lambda path: not path.startswith('/delta-sharing'), 'delta': lambda path: path.startswith('/delta-sharing')}

def breakable(doc:dict, op) -> bool:
    "Can a request to `op` break its schema? Only if it takes a body or a parameter with more than 'any text' (a type, pattern, bound or choice)."
    spec = doc['paths'][op.path][op.method.lower()]
    loose = lambda p: {k: v for k, v in p['schema'].items() if k != 'title'} == {'type': 'string'}
    return 'requestBody' in spec or any(not loose(p) for p in spec.get('parameters', []))

def fuzz(world, caller:str, surface:str, mode:GenerationMode=GenerationMode.POSITIVE) -> dict:
    "Call every operation of `surface` with `EXAMPLES` generated cases as `caller`; return the cases sent, statuses seen and failures found."
    headers = {'Authorization': f"Bearer {world['tokens'][caller]}"}
    checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS
    statuses, failures, ops, unbreakable, t0 = Counter(), [], [], [], time.perf_counter()
    for result in world['schema'].get_all_operations():
        op = result.ok()
        if not SURFACES[surface](op.path) or (mode is GenerationMode.NEGATIVE and not breakable(world['doc'], op)): continue
        ops.append(op.label)
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(cases(op, mode))
        def run(case):
            r = case.call(base_url=world['url'], headers=headers)
            statuses[r.status_code] += 1
            try: case.validate_response(r, checks=checks, headers=headers)
            except BaseException as e:                       # schemathesis reports its findings as a `FailureGroup`
                if isinstance(e, (KeyboardInterrupt, SystemExit)): raise
                for f in getattr(e, 'exceptions', [e]):
                    failures.append({'operation': op.label, 'status': r.status_code, 'check': type(f).__name__,
                                     'problem': str(f).splitlines()[0][:200], 'answer': r.text[:300], 'request': case.as_curl_command(headers)[:600]})
        try: run()
        except Unsatisfiable: unbreakable.append(op.label)          # nothing in its schema to break (no parameters, no body)
    gc.collect()      # finalise the clients the run left behind now, not inside a later `ast.parse` (CPython 3.11 then fails it)
    return {'operations': ops, 'unbreakable': unbreakable, 'cases': sum(statuses.values()), 'statuses': dict(sorted(statuses.items())), 'failures': failures,
            'seconds': time.perf_counter() - t0}

def summary(failures:list[dict]) -> str:
    "One line per distinct (operation, check, status), with one example, for an assertion message."
    seen = {}
    for f in failures: seen.setdefault((f['operation'], f['check'], f['status']), f)
    return '\n'.join(f"{k[0]} -> {k[2]} {k[1]}: {f['problem']} | {f['answer'][:150]} | {f['request'][:300]}" for k, f in seen.items())

def record(world, key:str, run:dict):
    "Keep a run's figures and rewrite `bench/results/fuzz.json` with every run so far."
    world['figures'][key] = run | {'failures': run['failures'][:20], 'failures_total': len(run['failures']),
                                   'violations': sum(f['check'] in VIOLATIONS for f in run['failures'])}
    runs = world['figures'].values()
    doc = {'examples_per_operation': EXAMPLES, 'cases': sum(r['cases'] for r in runs),
           'server_errors': sum(n for r in runs for s, n in r['statuses'].items() if s >= 500),
           'schema_violations': sum(r['violations'] for r in runs),
           'failures': sum(r['failures_total'] for r in runs), 'runs': world['figures']}
    doc['operations'] = len({o for r in runs for o in r['operations']})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(doc, indent=2, default=str) + '\n')

@pytest.mark.parametrize('surface', list(SURFACES))
@pytest.mark.parametrize('caller', ['owner', 'consumer'])
def test_fuzz_conforms(world, caller, surface):
    "Schema-valid requests, as owner and as consumer, to the REST API and to Delta Sharing: a documented status, a body that fits the schema, never a 5xx."
    run = fuzz(world, caller, surface)
    record(world, f'{caller}-{surface}', run)
    assert len(run['operations']) >= {'rest': 15, 'delta': 8}[surface] and run['cases'] >= len(run['operations']) * min(EXAMPLES, 4)
    assert not [s for s in run['statuses'] if s >= 500], summary(run['failures'])
    assert not run['failures'], summary(run['failures'])
    assert 200 in run['statuses'] and {403, 404, 422} & set(run['statuses'])        # the hub's logic was reached, and refused some

@pytest.mark.parametrize('surface', list(SURFACES))
def test_fuzz_refuses_what_breaks_the_schema(world, surface):
    "Requests that break the described schema are refused with a 4xx (and a body that fits the error schema), never served."
    run = fuzz(world, 'consumer', surface, GenerationMode.NEGATIVE)
    record(world, f'consumer-{surface}-negative', run)
    assert run['cases'] >= len(run['operations']) - len(run['unbreakable']) > 0
    assert not run['failures'], summary(run['failures'])

# ---------------------------------------------------------------- the description itself, and what fuzzing found

def test_every_operation_documents_its_errors(world):
    "Each operation describes the error answers it can give, all with the `{code, message}` body — not FastAPI's validation shape."
    doc = httpx.get(f"{world['url']}/openapi.json").json()
    problem = doc['components']['schemas']['Problem']
    assert problem['required'] == ['code', 'message']
    assert 'HTTPValidationError' not in doc['components']['schemas']
    for path, methods in doc['paths'].items():
        for method, op in methods.items():
            assert {str(s) for s in ERROR_RESPONSES} <= set(op['responses']), (method, path, sorted(op['responses']))
            assert op['responses']['422']['content']['application/json']['schema'] == {'$ref': '#/components/schemas/Problem'}, (method, path)
            assert '200' in op['responses'], (method, path)

def test_answers_have_described_shapes(world):
    "Successful answers are described by their own schemas, so the fuzzer's schema check has something to hold them to."
    doc = httpx.get(f"{world['url']}/openapi.json").json()
    ref = lambda p, m='get': doc['paths'][p][m]['responses']['200']['content']['application/json']['schema'].get('$ref', '').rsplit('/', 1)[-1]
    assert ref('/api/v1/datasets') == ref('/api/v1/audit') == ref('/api/v1/datasets/{name}/versions') == 'Frame'
    assert (ref('/api/v1/whoami'), ref('/api/v1/audit/verify'), ref('/health')) == ('Caller', 'AuditCheck', 'Health')
    assert (ref('/api/v1/datasets/{name}/grants', 'post'), ref('/api/v1/datasets/{name}/grants/{principal}', 'delete')) == ('GrantMade', 'Revoked')
    assert doc['paths']['/api/v1/datasets/{name}/data']['get']['responses']['200']['headers']['X-Rows']['schema']['pattern'] == '^[0-9]+$'

@pytest.mark.parametrize('epsilon', [1e300, 5e-324])
def test_extreme_epsilon_is_refused_not_a_crash(world, epsilon):
    "An ε whose square overflows a float, or whose noise scale 1/ε does (found by fuzzing: an OverflowError and a 500), is refused with 422 naming epsilon."
    c = world['http']['consumer']
    for path in ('/api/v1/datasets/clinic/query/cost', '/api/v1/datasets/clinic/query'):
        for kind in ('count', 'mean'):
            r = c.post(path, json={'kind': kind, 'column': 'age', 'epsilon': epsilon, **({'bounds': [0, 120]} if kind == 'mean' else {})})
            assert r.status_code == 422 and 'epsilon' in r.json()['message'], (path, kind, r.status_code, r.text)

@pytest.mark.parametrize('key', ['columns', 'to', 'view', 'token'])
def test_grant_params_cannot_repeat_a_field(world, key):
    "A view parameter named like a field of the grant (found by fuzzing: a TypeError and a 500) is a 422 naming it, and grants nothing."
    before = len(world['hub'].card('clinic')['grants'])
    r = world['http']['owner'].post('/api/v1/datasets/clinic/grants', json={'to': 'spare', 'purpose': 'p', 'view': 'columns', 'columns': ['age'], 'params': {key: ['age']}})
    assert r.status_code == 422 and repr(key) in r.json()['message'], (r.status_code, r.text)
    assert len(world['hub'].card('clinic')['grants']) == before

BIG = 10**30

@pytest.mark.parametrize('path', ['card', 'quality', 'ledger', 'data'])
@pytest.mark.parametrize('param', ['version', 'offset', 'limit'])
def test_numbers_beyond_64_bits_are_refused(world, path, param):
    "A version, offset or limit beyond 2⁶³ − 1 (found by fuzzing: an OverflowError in SQLite or Arrow, and a 500) is a 422 naming the parameter."
    if param != 'version' and path != 'data': return
    c = world['http']['owner']
    r = c.get(f'/api/v1/datasets/clinic/{path}', params={param: BIG})
    assert r.status_code == 422 and param in r.json()['message'], (r.status_code, r.text)
    assert c.get(f'/api/v1/datasets/clinic/{path}', params={param: 2**63 - 1}).status_code in (200, 404)

@pytest.mark.parametrize('to', ['x\x00y', 'admin\u202egnp.exe', '\u0430dmin', '../etc', 'a b', ''])
def test_grantee_names_follow_the_name_rule(world, to):
    "A grantee named with a NUL, an RTL override, a Cyrillic look-alike, a path or a space is refused, and no principal is made."
    hub = world['hub']
    c = world['http']['owner']
    r = c.post('/api/v1/datasets/clinic/grants', json={'to': to, 'purpose': 'p', 'view': 'columns', 'columns': ['age']})
    assert r.status_code == 422 and 'to' in r.json()['message'], (r.status_code, r.text)
    with hub.catalog.session() as s:
        from leptonhub.platform.catalog import Principal
        assert s.query(Principal).filter(Principal.name == to).count() == 0

def test_far_expiry_is_refused_not_a_crash(world):
    "An expiry too far away for a date (found by fuzzing: an OverflowError in `timedelta`, and a 500) is a 422 naming the expiry."
    c = world['http']['owner']
    r = c.post('/api/v1/datasets/clinic/grants', json={'to': 'far-lab', 'purpose': 'p', 'view': 'columns', 'columns': ['age'], 'expires': '99999999999d'})
    assert r.status_code == 422 and '99999999999d' in r.json()['message'], (r.status_code, r.text)

@pytest.mark.parametrize('version', ['abc', [1], {'a': 1}, 1.5, -1, BIG])
def test_delta_query_version_that_is_not_a_version(world, version):
    "A Delta Sharing query whose `version` is not a version number (found by fuzzing: a 500) is a 4xx naming the version."
    c = world['http']['consumer']
    r = c.post('/delta-sharing/shares/leptonhub/schemas/clinic/tables/columns/query', json={'version': version})
    assert r.status_code in (404, 422) and 'version' in r.json()['message'], (version, r.status_code, r.text)
