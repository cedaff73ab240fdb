"""The docs site: built from the notebooks with every warning an error, then read in a real browser.

`docs/build.py` builds the site from scratch into a temporary folder; a loopback HTTP server serves it; Debian's
Chromium, driven headless by Playwright (its own browser download is not used), opens every page. Chromium missing is
a failure, never a skip: `make test` installs it.
"""
from __future__ import annotations
import functools, http.server, importlib.util, json, re, subprocess, sys, threading, time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin, urlsplit
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
CHROMIUM = '/usr/bin/chromium'
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--no-first-run', '--disable-quic']
# Text that only hidden cells hold: nbdev's test imports and export call, build.py's working-folder cell, and the
# body of an exported helper (exported source never shows; its signature does).
HIDDEN = ['from fastcore.test import', 'from nbdev.showdoc import', 'nbdev_export', 'os.chdir(', 'urlsafe_b64encode']

_spec = importlib.util.spec_from_file_location('docs_build', ROOT/'docs'/'build.py')
docs_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_build)

def _title(nb:Path) -> str:
    "The title of notebook `nb`: its first `# ` heading."
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        if c['cell_type'] == 'markdown' and (m := re.search(r'^#\s+(.+?)\s*$', ''.join(c['source']), re.M)): return m.group(1)
    raise AssertionError(f'{nb} has no title')

PAGES = {docs_build.page_of(nb, NBS): _title(nb) for nb in sorted(NBS.rglob('*.ipynb'))
         if not any(p.startswith(('.', '_')) for p in nb.relative_to(NBS).parts)}

# --- the pre-step, on its own (fast) ---

def test_directives_become_tags(tmp_path, monkeypatch):
    "Hidden and exported cells still run but never show; slow cells never run; `echo: false` hides input; `show_doc` becomes Markdown."
    monkeypatch.chdir(ROOT)
    cells = [('code', '#| default_exp platform.delta'), ('code', '#| hide\nfrom fastcore.test import *'),
             ('markdown', '# delta\n\n> Delta Sharing.'), ('markdown', '## Addresses'),
             ('code', '#| export\ndef table_address(dataset:str, view:str) -> str: return f"leptonhub.{dataset}.{view}"'),
             ('code', '#| slow\nbig = 1'), ('code', '#| echo: false\nprint("shown")'), ('code', 'show_doc(profile)'),
             ('code', '#| hide\nimport nbdev; nbdev.nbdev_export()')]
    nb = tmp_path/'19_delta.ipynb'
    nb.write_text(json.dumps({'cells': [{'cell_type': k, 'metadata': {}, 'source': s, **({'outputs': [], 'execution_count': None} if k == 'code' else {})}
                                        for k, s in cells], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    doc = docs_build.process(nb, 'platform/delta', True, 'https://leptonhub.github.io/leptonhub')
    got = [(c['cell_type'], c['metadata'].get('tags', []), c['source']) for c in doc['cells']]
    assert got[0][2].startswith('# delta') and '```{container} lead\nDelta Sharing.' in got[0][2]
    code = {src: tags for kind, tags, src in got if kind == 'code'}
    assert code['from fastcore.test import *'] == ['remove-cell']
    assert code['def table_address(dataset:str, view:str) -> str: return f"leptonhub.{dataset}.{view}"'] == ['remove-cell']
    assert code['big = 1'] == ['skip-execution'] and code['print("shown")'] == ['remove-input']
    assert not any('nbdev_export' in src or '#|' in src for src in code)
    api = [src for kind, _, src in got if kind == 'markdown' and 'def ' in src]
    assert len(api) == 2 and '### table_address' in api[0] and '<span id="table_address">' in api[0]
    assert "base_url:str, # the hub server's base URL" in api[1] and '[source]' not in api[1]

def test_links_become_relative():
    "nbdev's absolute links and links to other notebooks point at this site's pages."
    host = 'https://leptonhub.github.io/leptonhub'
    assert docs_build.relink(f'[`Hub`]({host}/platform/hub.html#hub)', 'tutorials/x', host) == '[`Hub`](../platform/hub.html#hub)'
    assert docs_build.relink(f'[`AccessDenied`]({host}/core.html#accessdenied)', 'core', host) == '[`AccessDenied`](core.html#accessdenied)'
    src = NBS/'tutorials'/'02_share_first_dataset.ipynb'
    assert docs_build.nb_links('[next](03_hub_server_delta_sharing.ipynb)', src, 'tutorials/share_first_dataset', NBS) == '[next](hub_server_delta_sharing.html)'
    assert docs_build.nb_links('[hub](../platform/16_hub.ipynb#hub.read)', src, 'tutorials/share_first_dataset', NBS) == '[hub](../platform/hub.html#hub.read)'
    with pytest.raises(RuntimeError, match='names no notebook'): docs_build.nb_links('[x](nope.ipynb)', src, 'tutorials/x', NBS)

# --- the build ---

@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    "The site, built from scratch: fast notebooks executed, `-W` (any warning, cell error or timeout fails)."
    work = tmp_path_factory.mktemp('docs')
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT/'docs'/'build.py'), '--out', str(work/'site'), '--work', str(work/'work')],
                       cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, f'the docs build failed:\n{(r.stdout + r.stderr)[-6000:]}'
    print(f'docs built in {time.time() - t0:.0f} s')
    return work/'site'

def test_one_page_per_notebook(site):
    for page in PAGES: assert (site/f'{page}.html').is_file(), f'no page for {page}'
    assert (site/'search.html').is_file() and (site/'searchindex.js').is_file()
    assert not (site/'_sources').exists(), 'the notebook sources (with their hidden cells) must not be published'

def test_slow_cells_never_ran(site):
    "Cells flagged `#| slow` or `#| gpu` are shown but were not executed for the site."
    executed = list((site.parent/'work'/'build'/'jupyter_execute').rglob('*.ipynb'))
    skipped = [c for nb in executed for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if 'skip-execution' in c['metadata'].get('tags', [])]
    assert executed and skipped and all(c['outputs'] == [] and c['execution_count'] is None for c in skipped)

def test_no_hidden_text_in_any_file(site):
    for f in site.rglob('*'):
        if f.suffix in ('.html', '.js', '.txt', '.json', '.inv') and 'mathjax' not in f.parts:
            text = f.read_text(encoding='utf-8', errors='replace')
            assert not [h for h in HIDDEN if h in text], f'{f.relative_to(site)} holds text from a hidden cell'

class _Refs(HTMLParser):
    def __init__(self): super().__init__(); self.refs = []
    def handle_starttag(self, tag, attrs):
        self.refs += [(tag, k, v) for k, v in attrs if k in ('href', 'src') and v]

def test_links_and_assets_stay_on_the_site(site):
    "Every link between pages lands on a page of the site; every script, style sheet and image is the site's own."
    for f in site.rglob('*.html'):
        p = _Refs(); p.feed(f.read_text(encoding='utf-8'))
        for tag, attr, ref in p.refs:
            parts = urlsplit(ref)
            if parts.scheme in ('http', 'https', 'mailto'):
                assert tag == 'a', f'{f.relative_to(site)} loads {ref} from outside the site'
                continue
            if parts.scheme == 'data' or not parts.path: continue
            target = (f.parent/parts.path).resolve()
            assert target.exists(), f'{f.relative_to(site)}: {ref} leads nowhere'

# --- in the browser ---

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

@pytest.fixture(scope='module')
def served(site):
    "The site on a loopback port: its base URL."
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown(); httpd.server_close()

@pytest.fixture(scope='module')
def browser():
    "Debian's Chromium, headless, with a fresh profile, no background networking."
    if not Path(CHROMIUM).exists():
        pytest.fail(f'Chromium is not installed at {CHROMIUM}: the docs browser test needs it (`apt-get install -y chromium`; `make test` installs it)', pytrace=False)
    try: from playwright.sync_api import sync_playwright
    except ImportError: pytest.fail('playwright is not installed: `make install` installs the dev requirements', pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()

def _loopback(url:str, base:str) -> bool:
    return url.startswith(base + '/') or url == base or urlsplit(url).scheme in ('data', 'blob', 'about')

@pytest.fixture(scope='module')
def tab(browser, served):
    "A page in a fresh browser context that records every request and JavaScript error; requests off loopback are refused."
    ctx = browser.new_context()
    t = SimpleNamespace(page=ctx.new_page(), requests=[], errors=[], base=served)
    ctx.on('request', lambda r: t.requests.append(r.url))
    ctx.route(lambda url: not _loopback(url, served), lambda route: route.abort())
    t.page.on('pageerror', lambda e: t.errors.append(f'{t.page.url}: {e}'))
    yield t
    ctx.close()

@pytest.fixture(scope='module')
def visited(tab):
    "Every page opened once: {page: (HTTP status, h1, document title, body text)}."
    out = {}
    for page in PAGES:
        r = tab.page.goto(f'{tab.base}/{page}.html', wait_until='load')
        out[page] = (r.status, tab.page.locator('article h1').first.inner_text().rstrip('¶# \n'), tab.page.title(), tab.page.inner_text('body'))
    return out

def test_every_page_renders_its_title(visited):
    for page, title in PAGES.items():
        status, h1, doc_title, _ = visited[page]
        assert status == 200, f'{page}: HTTP {status}'
        assert h1 == title and doc_title.startswith(title), f'{page}: shows {h1!r} / {doc_title!r}, not {title!r}'

def test_no_hidden_cell_text_on_any_page(visited):
    for page, (*_, text) in visited.items():
        assert not [h for h in HIDDEN if h in text], f'{page} shows text from a hidden cell'

def test_landing_page_and_sidebar(tab, visited):
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    headline = 'A privacy-first data-sharing hub for people without a data team'
    assert headline in readme and headline in visited['index'][3]
    tab.page.goto(f'{tab.base}/index.html')
    captions = tab.page.locator('.sidebar-tree p.caption').evaluate_all('ps => ps.map(p => p.textContent.trim())')
    assert captions == ['Core', 'Platform', 'Privacy', 'Metrics', 'Apps', 'Tutorials'], captions
    links = {h.split('#')[0] for h in tab.page.locator('.sidebar-tree a.reference').evaluate_all('as => as.map(a => a.getAttribute("href"))')}
    assert links == {f'{p}.html' for p in PAGES if p != 'index'}

def test_api_reference_on_a_module_page(tab):
    "`show_doc` entries: a heading per function, its signature with the docments comments, its docstring."
    tab.page.goto(f'{tab.base}/platform/hub.html')
    entry = tab.page.locator('h3').filter(has_text=re.compile(r'^Hub\.grant\W*$')).first.locator('xpath=..')
    sig = entry.locator('pre').first.inner_text()
    assert sig.startswith('def grant(') and 'purpose:str, # why the data is shared; recorded with every read' in sig
    assert 'return the grant id and a new token' in entry.inner_text()
    assert tab.page.locator('[id="hub.grant"]').count() == 1   # nbdev's anchor, which its links elsewhere point at

def test_plots_load(tab):
    for page in ('tutorials/share_first_dataset', 'tutorials/clean_and_score'):
        tab.page.goto(f'{tab.base}/{page}.html', wait_until='load')
        sizes = tab.page.locator('div.cell_output img').evaluate_all('imgs => imgs.map(i => [i.complete, i.naturalWidth, i.getAttribute("src")])')
        assert sizes and all(done and width > 0 for done, width, _ in sizes), f'{page}: {sizes}'
        assert all(src.endswith('.png') for *_, src in sizes)

def test_maths_rendered_by_the_sites_mathjax(tab):
    tab.page.goto(f'{tab.base}/privacy/dp.html')
    tab.page.wait_for_selector('mjx-container svg', state='attached', timeout=30_000)
    assert tab.page.locator('mjx-container').count() > 20
    assert any(u.startswith(tab.base) and 'mathjax/tex-svg-full.js' in u for u in tab.requests)

def test_search_finds_a_function(tab):
    tab.page.goto(f'{tab.base}/search.html?q=sign_link')
    tab.page.wait_for_selector('#search-results ul.search li a', timeout=30_000)
    hrefs = tab.page.locator('#search-results ul.search li a').evaluate_all('as => as.map(a => a.getAttribute("href"))')
    assert any(h.startswith('platform/delta.html') for h in hrefs), hrefs

def test_no_request_leaves_loopback_and_no_script_fails(tab, visited):
    "Checked last: over every page, the plots, the maths and the search above."
    assert len(tab.requests) > len(PAGES)
    assert [u for u in tab.requests if not _loopback(u, tab.base)] == []
    assert tab.errors == []
