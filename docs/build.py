"""Build the docs site from `nbs/` without Quarto: nbdev's processors prepare each notebook, Sphinx + myst-nb render it.

    python docs/build.py [--out _site] [--work _proc] [--jobs 2]

1. *Prepare* (`prepare`): every notebook goes through nbdev's own processors (front matter, `show_doc` cells added
   after each exported definition, backticked names linked) and then through `to_myst`, which turns nbdev's
   directives into the cell tags myst-nb understands. Hidden and exported cells are *tagged* `remove-cell`
   rather than deleted, so the notebook still runs top to bottom at build time; `show_doc` cells become Markdown
   cells holding the rendered signature, so the API reference is there whether or not the notebook is executed.
2. *Render*: `sphinx-build -W` with myst-nb executes the fast notebooks (a fresh kernel each, in the notebook's own
   folder, as `nbdev_test` runs them; `#| slow` and `#| gpu` cells skipped) and renders every page with the
   Furo theme, MathJax served from the site, and Sphinx's own offline search. Any warning, cell error or
   timeout fails the build.

Why this way: nbdev's own renderer, Quarto, downloads a binary when installed, which cannot be done here; nbdev's
processors keep its semantics (directives, `show_doc`, links between chapters), and Sphinx with myst-nb comes from
PyPI, executes notebooks under a timeout and builds a search index that needs no server. Furo shows the whole tree in
its sidebar under one caption per subpackage, so the architecture is visible at a glance, and ships all its assets.
MathJax is fetched from npm once by `make docs` (docs/fetch-mathjax.sh) rather than committed, to keep clones small.
"""
from __future__ import annotations
import argparse, ast, hashlib, json, os, posixpath, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT/'docs'
MATHJAX = DOCS/'_vendor'/'mathjax'/'tex-svg-full.js'

# Notebooks too long to execute for every build render with their text, code and API reference but no outputs
# (`make nbtest` still runs them). None is at present: long runs sit in `#| slow` cells, which never run here.
# A notebook can also opt out itself with nbdev's front matter `skip_exec: true`.
SKIP_EXEC = set()

# The sidebar: one caption per folder of `nbs/`, in the order of the architecture; the landing page's neighbours
# at the top level of `nbs/` go under 'Core'. A new folder gets its own caption at the end.
SECTIONS = {'': 'Core', 'platform': 'Platform', 'privacy': 'Privacy', 'metrics': 'Metrics', 'apps': 'Apps', 'tutorials': 'Tutorials'}

# What every kernel and nbclient say at start: not news.
NOISE = re.compile(r'Kernel is running over TCP without encryption|Executing notebook with kernel|^\s*$')

HIDE = {'hide', 'export', 'exporti', 'default_exp'}   # cells that never show (they still run)
NO_RUN = {'slow', 'gpu'}                             # nbdev's test flags: cells that never run at build time

def page_of(nb:Path, nbs:Path) -> str:
    "The page name (no suffix) of notebook `nb`, as nbdev names its HTML: `platform/16_hub.ipynb` -> `platform/hub`."
    from nbdev.frontmatter import _nbpath2html
    return _nbpath2html(nb.relative_to(nbs)).with_suffix('').as_posix()

def _rel(page:str, target:str) -> str:
    "The relative URL from `page` (e.g. `platform/hub`) to `target` (e.g. `core.html#accessdenied`)."
    return posixpath.relpath(target, posixpath.dirname(page) or '.')

def relink(md:str, page:str, host:str) -> str:
    "Point nbdev's absolute links to this site's pages (`https://host/base/x.html#a`) at relative URLs from `page`."
    return re.sub(re.escape(host.rstrip('/') + '/') + r'([^)\s"]+)', lambda m: _rel(page, m.group(1)), md)

def nb_links(md:str, src:Path, page:str, nbs:Path) -> str:
    "Point Markdown links to other notebooks (`[the hub](16_hub.ipynb#hub.read)`, relative to `src`) at their pages, relative to `page`."
    def page_url(m):
        target = (src.parent/m.group(1)).resolve()
        if not target.is_file() or nbs.resolve() not in target.parents:
            raise RuntimeError(f'{src.relative_to(nbs)}: the link to {m.group(1)} names no notebook in {nbs.name}/')
        return f'](' + _rel(page, page_of(target, nbs.resolve()) + '.html') + (m.group(2) or '') + ')'
    return re.sub(r'\]\((?![a-zA-Z][\w+.-]*:)([^)#\s]+\.ipynb)(#[^)\s]*)?\)', page_url, md)

def _directive_lines(src:str) -> str:
    "`src` without its leading `#|` directive lines (Quarto-style ones that nbdev leaves in place)."
    lines = src.splitlines(keepends=True)
    while lines and re.match(r'\s*#\|', lines[0]): lines.pop(0)
    return ''.join(lines).strip('\n')

def _show_doc_calls(src:str) -> list[ast.Call]|None:
    "The `show_doc(...)` calls if `src` consists of nothing else, else None."
    try: body = ast.parse(src).body
    except SyntaxError: return None
    calls = [n.value for n in body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and getattr(n.value.func, 'id', None) == 'show_doc']
    return calls if body and len(calls) == len(body) else None

def render_show_doc(call:ast.Call, ns:dict, page:str, host:str, under:int=2) -> str:
    "The Markdown of one `show_doc` call, evaluated in `ns`: an anchor with nbdev's name for it, a heading below level `under`, the signature with its docments, the docstring."
    from nbdev.showdoc import show_doc
    from nbdev.doclinks import NbdevLookup
    name = ast.unparse(call.args[0])
    try: obj, kw = eval(name, ns), {k.arg: eval(ast.unparse(k.value), ns) for k in call.keywords}
    except Exception as e: raise RuntimeError(f'{page}: cannot document `{name}`: {e}') from None
    md = show_doc(obj, **kw)._repr_markdown_()
    md = re.sub(r'^\s*---\s*\n', '', md)                                  # nbdev's rule above each entry
    md = re.sub(r'^\[source\]\([^)]*\)\{[^}]*\}\s*\n', '', md.lstrip())     # Quarto-only attributes; the repo link would leave the site
    md = re.sub(r'^(#+)\s+.*$', lambda m: f"{'#' * min(len(m.group(1)), under + 1)} {name}", md, count=1, flags=re.M)
    head, sep, rest = md.partition('```\n\n')                                # link names in the docstring, not in the signature
    md = head + sep + NbdevLookup().linkify(rest) if sep else md
    return f'<span id="{name.lower()}"></span>\n\n' + relink(md, page, host)

def _definition_order(cells:list) -> list:
    "`cells` with each run of `show_doc` cells that nbdev added put back in the order of the definitions (nbdev inserts them reversed)."
    out, run = [], []
    for c in cells + [None]:
        if c is not None and c.get('has_sd'): run.append(c); continue
        out += run[::-1] + ([c] if c is not None else [])
        run = []
    return out

def to_myst(nb, page:str, src:Path, run:bool, host:str) -> dict:
    "An nbdev-processed notebook as myst-nb wants it: directives as tags, `show_doc` as Markdown, front matter as a title."
    import importlib
    from nbdev.config import get_config
    fm, ns, cfg = nb.frontmatter_, {}, get_config()
    nbs = cfg.config_path/cfg.nbs_path
    exp = next((c.directives_['default_exp'][0] for c in nb.cells if 'default_exp' in c.directives_), None)
    if exp: ns = vars(importlib.import_module(f'{cfg.lib_name}.{exp}'))
    cells = [{'cell_type': 'markdown', 'metadata': {}, 'source': f"# {fm.get('title', page)}\n"
              + (f"\n```{{container}} lead\n{fm['description']}\n```\n" if fm.get('description') else '')}]
    cells.append({'cell_type': 'code', 'metadata': {'tags': ['remove-cell']}, 'execution_count': None, 'outputs': [],
                  'source': f'import os; os.chdir({str(src.parent)!r})'})   # nbdev_test runs a notebook in its own folder
    level = 1   # the level of the last heading: an API entry goes one below it
    for c in _definition_order(nb.cells):
        if c.cell_type == 'raw': continue
        d, source = c.directives_ if c.cell_type == 'code' else {}, _directive_lines(c.source)
        if c.cell_type == 'markdown':
            if source.strip(): cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': nb_links(relink(source, page, host), src, page, nbs)})
            heads = re.findall(r'^(#+)\s', re.sub(r'```.*?```', '', source, flags=re.S), flags=re.M)
            if heads: level = len(heads[-1])
            continue
        if not source.strip() or (d.keys() & {'hide'} and 'nbdev_export' in source): continue
        calls = _show_doc_calls(source)
        if calls is not None and not d.keys() & HIDE and d.get('include:') != ['false']:
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': '\n\n'.join(render_show_doc(k, ns, page, host, level) for k in calls)})
            continue
        tags = []
        if d.keys() & HIDE or d.get('include:') == ['false']: tags.append('remove-cell')
        if d.get('echo:') == ['false']: tags.append('remove-input')
        if d.get('output:') == ['false']: tags.append('remove-output')
        if d.keys() & NO_RUN or d.get('eval:') == ['false']: tags.append('skip-execution')
        cells.append({'cell_type': 'code', 'metadata': {'tags': tags} if tags else {}, 'execution_count': None, 'outputs': [], 'source': source})
    meta = {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
            'language_info': {'name': 'python'}}
    if not run: meta['mystnb'] = {'execution_mode': 'off'}
    for i, c in enumerate(cells): c['id'] = f'c{i}'
    return {'cells': cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}

def process(path:Path, page:str, run:bool, host:str) -> dict:
    "Notebook `path` through nbdev's processors, then `to_myst`."
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.processors import populate_language, add_show_docs, strip_ansi, hide_line, rm_header_dash, add_links, clean_magics
    nb = read_nb(path)
    NBProcessor(nb=nb, procs=[FrontmatterProc, populate_language, add_show_docs, strip_ansi, hide_line, rm_header_dash, clean_magics, add_links]).process()
    if not hasattr(nb, 'frontmatter_'): nb.frontmatter_ = {}
    skip = str(nb.frontmatter_.get('skip_exec', False)).lower() in ('true', 'yes', '1')
    return to_myst(nb, page, path, run and not skip, host)

def toctrees(pages:dict[str, str]) -> str:
    "Hidden toctrees for the landing page, one per section, which Furo shows as the sidebar."
    groups = {}
    for page in pages:
        if page == 'index': continue
        folder = page.split('/')[0] if '/' in page else ''
        groups.setdefault(folder, []).append(page)
    order = list(SECTIONS) + sorted(set(groups) - set(SECTIONS))
    return '\n'.join(f"```{{toctree}}\n:caption: {SECTIONS.get(g, g.title())}\n:hidden:\n\n" + '\n'.join(groups[g]) + '\n```\n'
                     for g in order if g in groups)

def _write(path:Path, text:str):
    "Write `text` to `path` only if it changed, so Sphinx re-reads (and re-executes) only what changed."
    if path.exists() and path.read_text(encoding='utf-8') == text: return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding='utf-8')

def library_hash(lib:Path) -> str:
    "A hash of the library's source: stamped on every prepared notebook, so a change to the library re-executes them all."
    h = hashlib.sha256()
    for f in sorted(lib.rglob('*.py')): h.update(f.relative_to(lib).as_posix().encode() + b'\0' + f.read_bytes())
    return h.hexdigest()[:16]

def prepare(src:Path) -> dict[str, str]:
    "Write every notebook of `nbs/`, processed, and the files beside them into `src`; return {page: notebook}."
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    cfg = get_config()
    lib = library_hash(cfg.lib_path)
    nbs, host = cfg.config_path/cfg.nbs_path, cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/')
    paths = sorted(nbglob(nbs, as_path=True), key=lambda p: p.relative_to(nbs).as_posix())
    pages, keep = {}, set()
    for p in paths:
        rel = p.relative_to(nbs).as_posix()
        page = page_of(p, nbs)
        if page in pages: raise RuntimeError(f'{rel} and {pages[page]} would both be the page {page}.html: rename one')
        pages[page] = rel
    for page, rel in pages.items():
        doc = process(nbs/rel, page, rel not in SKIP_EXEC, host)
        doc['metadata']['leptonhub'] = {'source': rel, 'library': lib}
        if page == 'index': doc['cells'].append({'cell_type': 'markdown', 'id': 'toc', 'metadata': {}, 'source': toctrees(pages)})
        _write(src/f'{page}.ipynb', json.dumps(doc, indent=1, ensure_ascii=False) + '\n')
        keep.add(src/f'{page}.ipynb')
    for f in nbs.rglob('*'):   # images and other files the notebooks refer to
        rel = f.relative_to(nbs)
        if f.is_file() and f.suffix != '.ipynb' and not any(part.startswith(('.', '_')) for part in rel.parts):
            (src/rel).parent.mkdir(parents=True, exist_ok=True)
            if not (src/rel).exists() or (src/rel).read_bytes() != f.read_bytes(): shutil.copy2(f, src/rel)
            keep.add(src/rel)
    for f in list(src.rglob('*.ipynb')):
        if f not in keep: f.unlink()
    return pages

def build(out:Path, work:Path, jobs:int=2, execute:bool=True) -> float:
    "Prepare the notebooks into `work/src`, render them with Sphinx into `work/build`, copy the site to `out`; return the seconds taken."
    t0 = time.time()
    if not MATHJAX.exists(): raise SystemExit(f'docs: {MATHJAX.relative_to(ROOT)} is missing: run `make docs`, which fetches MathJax from npm once')
    os.chdir(ROOT)
    src, html = work/'src', work/'build'/'html'
    prepare(src)
    # One thread per kernel: `jobs` kernels run side by side, and OpenMP's spinning threads (scikit-learn's gradient
    # boosting, torch) slow down forty-fold when they outnumber the cores.
    threads = {k: os.environ.get(k, '1') for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')}
    env = {**os.environ, **threads, 'LEPTONHUB_HOME': str(work/'hub'), 'PYDEVD_DISABLE_FILE_VALIDATION': '1'}
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-W', '--keep-going', '-q', '-j', str(jobs), '-c', str(DOCS),
           '-d', str(work/'build'/'doctrees'), str(src), str(html)] + ([] if execute else ['-D', 'nb_execution_mode=off'])
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            if not NOISE.search(line): print(line, end='', flush=True)
    if p.returncode: raise SystemExit(f'docs: sphinx-build failed (exit {p.returncode}); see the messages above')
    if out.exists(): shutil.rmtree(out)
    shutil.copytree(html, out, ignore=shutil.ignore_patterns('.buildinfo', '.doctrees', '_sources'))
    return time.time() - t0

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', type=Path, default=ROOT/'_site', help='where the site goes (default: _site)')
    ap.add_argument('--work', type=Path, default=ROOT/'_proc', help='processed notebooks, executed notebooks and Sphinx caches (default: _proc)')
    ap.add_argument('--jobs', type=int, default=2, help='notebooks rendered (and executed) in parallel')
    ap.add_argument('--no-exec', action='store_true', help='execute nothing: pages without outputs, for a quick look at the text')
    a = ap.parse_args()
    secs = build(a.out.resolve(), a.work.resolve(), a.jobs, not a.no_exec)
    print(f'docs: built {a.out} in {secs:.0f} s; open {a.out/"index.html"}, or serve it: python -m http.server -d {a.out}')

if __name__ == '__main__': main()
