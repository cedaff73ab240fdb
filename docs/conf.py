"""Sphinx settings for the leptonhub site. `docs/build.py` prepares the notebooks and runs Sphinx with this folder as its configuration."""
from configparser import ConfigParser
from pathlib import Path

_cfg = ConfigParser(delimiters=['='])
_cfg.read(Path(__file__).parents[1]/'settings.ini', encoding='utf-8')
_cfg = _cfg['DEFAULT']

project = _cfg['lib_name']
author = _cfg['author']
copyright = _cfg['copyright']
release = version = _cfg['version']

extensions = ['myst_nb', 'sphinx.ext.mathjax']
root_doc = 'index'
exclude_patterns = ['**/.ipynb_checkpoints']

# MyST: maths between dollars ($x$, $$...$$) as the notebooks write it, ::: fences.
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence']
myst_dmath_double_inline = True
# build.py turns nbdev's links between chapters into relative URLs of this site (`hub.html#hub.read`): plain hrefs.
myst_all_links_external = True

# myst-nb: a fresh kernel per notebook (build.py turns execution off for the notebooks it lists as slow), every
# failure is fatal: a cell error or a timeout stops the build, and -W makes every warning an error.
nb_execution_mode = 'force'
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_markdown_format = 'gfm'          # Markdown outputs (dataset cards) with their tables

# The site works offline: Furo ships its assets, MathJax is served from _static (fetched by `make docs`), and
# Sphinx's search is a JavaScript index on the site itself.
html_theme = 'furo'
html_title = project
html_static_path = ['_static', '_vendor']
html_css_files = ['leptonhub.css']
mathjax_path = 'mathjax/tex-svg-full.js'
html_copy_source = False                   # the sources hold the hidden cells: never publish them
html_show_sourcelink = False
html_theme_options = {'source_repository': '', 'navigation_with_keys': True}
