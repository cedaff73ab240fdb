"The README's library example runs as written."
import re
from pathlib import Path
import numpy as np, pandas as pd

README = Path(__file__).parents[1]/'README.md'

def test_readme_library_example(tmp_path, monkeypatch):
    code = re.search(r'\*\*As a library\.\*\*\s+```python\n(.*?)```', README.read_text(), re.S).group(1)
    rng = np.random.default_rng(1)
    def clinic(n, start):
        return pd.DataFrame({'patient_id': [f'P{start+i}' for i in range(n)], 'age': rng.integers(18, 90, n),
                             'sex': rng.choice(['F', 'M'], n), 'systolic': rng.normal(130, 15, n).round(),
                             'diagnosis': rng.integers(0, 2, n)})
    north, south = clinic(60, 0), clinic(40, 100)
    north.loc[3, 'age'] = 300
    clinic_rows = pd.concat([north, north.iloc[[7]]])
    clinic_rows.to_csv(tmp_path/'north.csv', index=False)
    south.to_parquet(tmp_path/'south.parquet')
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(code, ns)
    assert len(ns['cleaned'].data) == 99 and len(ns['cleaned'].quarantine) == 2
    assert ns['report'].N == 99 and 0 < ns['report'].Q <= 1
    assert (tmp_path/'quality-report'/'report.json').exists()

def test_readme_hub_example(tmp_path, monkeypatch):
    text = README.read_text()
    lib = re.search(r'\*\*As a library\.\*\*\s+```python\n(.*?)```', text, re.S).group(1)
    hub = re.search(r'\*\*Sharing through a hub\.\*\*\s+```python\n(.*?)```', text, re.S).group(1)
    rng = np.random.default_rng(2)
    n = 50
    north = pd.DataFrame({'patient_id': [f'P{i}' for i in range(n)], 'age': rng.integers(18, 90, n), 'sex': rng.choice(['F', 'M'], n),
                          'systolic': rng.normal(130, 15, n).round(), 'diagnosis': rng.integers(0, 2, n)})
    north.to_csv(tmp_path/'north.csv', index=False)
    north.head(10).to_parquet(tmp_path/'south.parquet')
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(lib, ns)
    exec(hub, ns)
    assert ns['hub'].verify_audit()
    log = ns['hub'].audit('visits')
    assert log.action.tolist() == ['publish', 'grant', 'read', 'revoke']
    assert log.rows.tolist()[2] == n
