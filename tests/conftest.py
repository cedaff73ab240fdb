"Shared fixtures: every test runs against a private hub home in a temporary folder."
import pytest

@pytest.fixture(autouse=True)
def hub_home(tmp_path, monkeypatch):
    "Point `$LEPTONHUB_HOME` at a fresh folder so no test touches the user's hub."
    home = tmp_path/'hub'
    monkeypatch.setenv('LEPTONHUB_HOME', str(home))
    return home
