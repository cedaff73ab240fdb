"Shared fixtures: every test runs against a private hub home in a temporary folder."
import pytest

@pytest.fixture(autouse=True)
def hub_home(tmp_path, monkeypatch):
    "Point `$LEPTONHUB_HOME` at a fresh folder so no test touches the user's hub."
    home = tmp_path/'hub'
    monkeypatch.setenv('LEPTONHUB_HOME', str(home))
    return home

@pytest.fixture(scope='module')
def one_thread():
    "Run a module's models on one thread: small batches are fastest so, and the test machine's cores are shared."
    import torch
    from threadpoolctl import threadpool_limits
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1): yield
    torch.set_num_threads(n)
