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
    p = run('demo', '--out', tmp_path/'r', '--json')
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s['N'] == 917 and Path(s['out']) == tmp_path/'r'
    assert {'report.json', 'quarantine.csv', 'ledger.csv', 'missing.png', 'quality_hist.png', 'quality_by_source.png'} <= set(os.listdir(tmp_path/'r'))

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
