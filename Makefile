# leptonhub: `make demo` and `make test` set everything up on a fresh machine with Python 3.10+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= leptonhub-report
MATHJAX  := docs/_vendor/mathjax/tex-svg-full.js
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test check-sync services nbtest pytest stress docs bench lab clean

$(STAMP): setup.py settings.ini
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install leptonhub with its dev tools

demo: $(STAMP) ## run the end-to-end medical sharing case; the report lands in $(OUT)/
	$(BIN)/leptonhub demo --out $(OUT)

test: $(STAMP) check-sync services nbtest pytest ## library in sync with notebooks, clean notebooks, notebook tests, pytest

check-sync: $(STAMP) ## nbdev_export and nbdev_clean must change nothing
	PATH=$(BIN):$$PATH sh .ci/check-sync

services: ## PostgreSQL for the backend tests and the scale-out tutorial (installed and started if missing)
	sh .ci/services.sh >/dev/null

nbtest: $(STAMP) ## run every notebook as a test (slow and gpu cells skipped; add them with FLAGS="slow gpu")
	LEPTONHUB_TEST_POSTGRES=$$(sh .ci/services.sh) $(BIN)/nbdev_test --n_workers 2 $(if $(FLAGS),--flags "$(FLAGS)")

pytest: $(STAMP) $(MATHJAX) $(CHROMIUM) ## the tests in tests/ (the docs site is built and read in headless Chromium)
	LEPTONHUB_TEST_POSTGRES=$$(sh .ci/services.sh) $(BIN)/python -m pytest -q tests

stress: $(STAMP) services ## the long fault, fuzz and load runs (minutes): SIGKILL, disk-fault and concurrency campaigns, then the load test; figures in bench/results/
	nice -n 10 $(BIN)/python bench/stress_crash.py --runs 200 --disk-runs 100 --concurrency-runs 5
	nice -n 10 $(BIN)/python bench/load.py --seconds 30 --workers 4
	LEPTONHUB_FUZZ_EXAMPLES=200 nice -n 10 $(BIN)/python -m pytest -q tests/test_fuzz_api.py

docs: $(STAMP) $(MATHJAX) ## build the docs site from nbs/ into _site/ (offline; open _site/index.html)
	$(BIN)/python docs/build.py --out _site

$(MATHJAX): docs/fetch-mathjax.sh
	sh docs/fetch-mathjax.sh

$(CHROMIUM): ## Debian's Chromium, for the browser test of the docs site
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null \
	  || { echo "make: could not install Chromium (apt-get install -y chromium); the docs browser test needs it at $(CHROMIUM)" >&2; exit 1; }

bench: $(STAMP) ## benchmarks against their baselines (see bench/README.md)
	$(BIN)/python bench/bench_ingest.py

lab: $(STAMP) ## open the notebooks in JupyterLab
	$(BIN)/jupyter lab nbs

clean: ## remove the virtual environment and build outputs
	rm -rf $(VENV) *.egg-info build dist _docs _proc _site docs/_vendor $(OUT)
