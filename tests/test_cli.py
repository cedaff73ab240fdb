"The `leptonhub` command as a user runs it: a real subprocess, real files, exit codes and output."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from leptonhub.examples import heart_disease_files, HEART_COLUMNS

LEPTONHUB = Path(sys.executable).parent/'leptonhub'  # the console script installed beside this Python

def run(*args, cwd=None):
    "Run `leptonhub ARGS` in a subprocess; return the completed process."
    return subprocess.run([str(LEPTONHUB), *map(str, args)], capture_output=True, text=True, cwd=cwd)

def test_quality_json_on_the_four_raw_hospital_files():
    files = heart_disease_files().values()
    p = run('quality', *files, '--names', ','.join(HEART_COLUMNS), '--label', 'num', '--json')
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s['N'] == 918 and s['quarantined'] == {'rows': 2, 'duplicates': 2, 'invalid': 0}
    assert 0.5 < s['Q'] < 1 and set(s['components']) == {'completeness', 'validity', 'uniqueness', 'consistency', 'label_trust'}
    steps = [(e['step'], e['rows_in'], e['rows_out']) for e in s['ledger']]
    assert steps == [('collect', 303, 303), ('collect', 294, 294), ('collect', 123, 123), ('collect', 200, 200),
                     ('integrate', 920, 920), ('clean', 920, 918)]

def test_quality_with_schema_quarantines_with_reasons(tmp_path):
    from leptonhub.examples import heart_disease_schema
    (tmp_path/'heart.json').write_text(json.dumps(heart_disease_schema().to_dict()))
    p = run('quality', *heart_disease_files().values(), '--names', ','.join(HEART_COLUMNS),
            '--schema', tmp_path/'heart.json', '--out', tmp_path/'report')
    assert p.returncode == 0, p.stderr
    assert 'N = 917 records' in p.stdout and 'ledger:' in p.stdout
    q = pd.read_csv(tmp_path/'report'/'quarantine.csv')
    assert sorted(q.reason) == ['exact duplicate of row 102 of processed.hungarian',
                                'exact duplicate of row 140 of processed.va', 'trestbps: 0.0 is outside [60, 250]']
    assert json.loads((tmp_path/'report'/'report.json').read_text())['N'] == 917

def test_demo_writes_its_report(tmp_path):
    "The demo in a reduced form (few epochs): every stage announced, every number in its report."
    p = run('demo', '--out', tmp_path/'r', '--epochs', '4', '--json')
    assert p.returncode == 0, p.stderr
    assert [l[:3] for l in p.stderr.splitlines() if l[1:3] == '/4'] == ['1/4', '2/4', '3/4', '4/4']
    s = json.loads(p.stdout)
    assert s['N'] == 917 and Path(s['out']) == tmp_path/'r'
    assert {'report.json', 'quarantine.csv', 'ledger.csv', 'missing.png', 'quality_hist.png', 'quality_by_source.png',
            'index.html', 'models.json', 'models.png', 'sharing.json', 'share-report', 'hub'} <= set(os.listdir(tmp_path/'r'))
    models = json.loads((tmp_path/'r'/'models.json').read_text())
    table = pd.DataFrame(models['models']).set_index('model')
    assert list(table.index) == ['raw', 'anonymized', 'dp-sgd']
    cols = ['accuracy', 'roc_auc', 'f1', 'loho_auc', 'auc_cleveland', 'auc_hungarian', 'auc_switzerland', 'auc_va_long_beach', 'attack_auc', 'exposed']
    assert table[cols].notna().all().all() and ((table[cols[:-1]] > 0.3) & (table[cols[:-1]] <= 1)).all().all()
    assert 0 < table.loc['dp-sgd', 'epsilon'] <= 1.0 + 1e-6 and table.loc['raw', 'accuracy'] > 0.6
    assert set(models['fairness']) == {'sex', 'age band'} and len(models['fairness']['age band']['by_group']) == 3
    sh = s['sharing']
    assert sh['institute_read']['identifiers_left'] == [] and sh['institute_read']['smallest_class'] >= 5 and sh['institute_loader']['rows'] == 917
    assert all(0 <= sh['institute_share'][k] <= 1 for k in ('E', 'Q', 'P'))
    html = (tmp_path/'r'/'index.html').read_text()
    assert 'models.png' in html and 'share-report/report.html' in html and f"E = {sh['institute_share']['E']:.3f}" in html

@pytest.mark.parametrize('content,expect', [
    (None, 'no such file'),
    ('a,b,c\n1,2,3\n4,5,6,7\n', 'ragged table: expected 3 fields, found 4 (row 3)'),
    ('', 'is empty'),
    (b'\x00\x01\x02PK\x03\x04' * 50, 'unknown format'),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path, content, expect):
    f = tmp_path/'site.csv'
    if isinstance(content, str): f.write_text(content)
    elif content is not None: f.write_bytes(content)
    p = run('quality', f, '--out', tmp_path/'report')
    assert p.returncode == 1
    assert p.stdout == '' and p.stderr.count('\n') == 1
    assert p.stderr.startswith('leptonhub: error: ') and str(f) in p.stderr and expect in p.stderr
    assert not (tmp_path/'report').exists()

def test_missing_schema_column_names_the_column(tmp_path):
    (tmp_path/'s.json').write_text(json.dumps({'fields': {'pulse': {'dtype': 'int'}}}))
    (tmp_path/'a.csv').write_text('bp\n120\n')
    p = run('quality', tmp_path/'a.csv', '--schema', tmp_path/'s.json')
    assert p.returncode == 1 and "needs ['pulse'] but no source (a) has it" in p.stderr and "column 'pulse'" in p.stderr

def test_usage_errors_exit_2():
    p = run('quality')
    assert p.returncode == 2 and 'sources' in p.stderr


def visits_csv(tmp_path, n=60):
    "A small visits table with quasi-identifiers and a diagnosis."
    import numpy as np
    rng = np.random.default_rng(3)
    df = pd.DataFrame({'name': [f'person {i}' for i in range(n)], 'age': rng.integers(20, 80, n),
                       'zip': rng.choice(['94110', '94117', '10001', '10002'], n), 'dx': rng.choice(['flu', 'cold', 'none'], n)})
    df.to_csv(tmp_path/'visits.csv', index=False)
    return df

def test_anonymize_cli_reports_and_writes(tmp_path):
    df = visits_csv(tmp_path)
    (tmp_path/'h').mkdir()
    pd.DataFrame({0: ['94110', '94117', '10001', '10002'], 1: ['941**'] * 2 + ['100**'] * 2, 2: ['*'] * 4}).to_csv(tmp_path/'h'/'zip.csv', sep=';', header=False, index=False)
    p = run('anonymize', tmp_path/'visits.csv', '--qi', 'age,zip', '--k', '5', '--sensitive', 'dx', '--l', '2', '--hierarchies', tmp_path/'h',
            '--drop', 'name', '--max-suppression', '0.0', '--l-kind', 'distinct', '--out', tmp_path/'out.csv', '--json')
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s['k'] >= 5 and s['l'] >= 2 and 0 <= s['ncp'] <= 1 and s['rows'] == 60 and {'suppressed', 'classes', 'seconds'} <= set(s)
    out = pd.read_csv(tmp_path/'out.csv', dtype=str)
    assert list(out.columns) == ['age', 'zip', 'dx'] and len(out) == 60
    assert set(out.zip) <= {'94110', '94117', '10001', '10002', '941**', '100**', '*'}
    assert out.groupby(['age', 'zip']).size().min() >= 5

def test_risk_cli_before_and_after(tmp_path):
    visits_csv(tmp_path)
    before = json.loads(run('risk', tmp_path/'visits.csv', '--qi', 'age,zip', '--json').stdout)
    run('anonymize', tmp_path/'visits.csv', '--qi', 'age,zip', '--k', '5', '--out', tmp_path/'k5.csv')
    after = json.loads(run('risk', tmp_path/'k5.csv', '--qi', 'age,zip', '--json').stdout)
    assert {'prosecutor_max', 'prosecutor_avg', 'marketer', 'uniques'} <= set(before)
    assert before['uniques'] > 0 and after['uniques'] == 0 and after['prosecutor_max'] <= 0.2 < before['prosecutor_max']

@pytest.mark.parametrize('args,says', [
    (['--qi', 'age,zipcode', '--k', '5'], "no column 'zipcode'"),
    (['--qi', 'age', '--k', '500'], 'larger than the table'),
    (['--qi', 'age', '--k', '5', '--sensitive', 'age', '--l', '2'], 'both a quasi-identifier and the sensitive'),
    (['--qi', 'age', '--k', '5', '--sensitive', 'dx', '--l', '9'], 'no grouping can reach l = 9'),
])
def test_anonymize_cli_bad_requests(tmp_path, args, says):
    visits_csv(tmp_path)
    p = run('anonymize', tmp_path/'visits.csv', *args, '--out', tmp_path/'o.csv')
    assert p.returncode == 1 and p.stderr.count('\n') == 1 and says in p.stderr
    assert not (tmp_path/'o.csv').exists()
