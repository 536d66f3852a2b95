# The README's quick start: `make demo` runs the example crawl through the local proxy
# farm; `make test` installs everything and runs the tests. Both create .venv first.
# `make demo STATUS=127.0.0.1:6025` serves the live status page during the demo; ARGS passes
# more arguments to `scrapy crawl` (ARGS="-s PROXY_DOMAIN_COOLDOWN=4": a slower demo).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_VENV := .venv-bench

STATUS ?=
ARGS ?=

.PHONY: demo demo-browser proxycheck test lint compat bench screenshot docs release-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint,metrics]'
	touch $(STAMP)

demo: $(STAMP)
	cd example_project && ../$(BIN)/python -m scrapy_proxybalance.testing.farm --run \
		../$(BIN)/python -m scrapy crawl pages -O output.json $(if $(STATUS),-s PROXY_STATUS_ADDRESS=$(STATUS)) $(ARGS)

# The same farm, pages rendered in headless Chromium (scrapy-playwright; Debian's chromium).
demo-browser: $(STAMP)
	cd example_project && ../$(BIN)/python -m scrapy_proxybalance.testing.farm --run \
		../$(BIN)/python -m scrapy crawl rendered -O output-rendered.json $(ARGS)

proxycheck: $(STAMP)
	cd example_project && ../$(BIN)/python -m scrapy_proxybalance.testing.farm --run ../$(BIN)/python -m scrapy proxycheck

test: $(STAMP)
	$(BIN)/python -m pytest -n 4 --durations=15

# The README's picture of the status page, taken by its headless-Chromium test.
screenshot: $(STAMP)
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_status.py -k chromium

# The documentation (docs/, Sphinx): warnings are errors, every cross-reference must resolve.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

# A release as it would be uploaded: a wheel and an sdist, built in isolation, that twine accepts.
RELEASE_STAMP := $(VENV)/.installed-release

$(RELEASE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[release]'
	touch $(RELEASE_STAMP)

release-check: $(RELEASE_STAMP)
	rm -rf dist
	$(BIN)/python -m build -q --outdir dist .
	$(BIN)/twine check --strict dist/*

lint: $(STAMP)
	$(BIN)/ruff check scrapy_proxybalance tests benchmarks example_project
	$(BIN)/mypy

# The oldest Scrapy that pyproject.toml admits, with the oldest scrapy-playwright the playwright
# extra admits: the package imports and crawls for real, plain and in a browser.
COMPAT_VENV := .venv-compat
OLDEST_SCRAPY := $(shell sed -n 's/.*"scrapy>=\([0-9.]*\)".*/\1/p' pyproject.toml)

OLDEST_PLAYWRIGHT := $(shell sed -n 's/^playwright = \["scrapy-playwright>=\([0-9.]*\),.*/\1/p' pyproject.toml)

compat: $(COMPAT_VENV)/.installed
	$(COMPAT_VENV)/bin/python -m pytest -p no:cacheprovider tests/test_compat.py tests/test_browser.py

$(COMPAT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install -q -e '.[test]' 'scrapy==$(OLDEST_SCRAPY)' \
		'scrapy-playwright==$(OLDEST_PLAYWRIGHT)'
	touch $@

# Benchmarks run in their own environment, with scrapy-rotating-proxies to compare against.
$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/selection.py --baseline 95ae433
	$(BENCH_VENV)/bin/python benchmarks/crawl.py
	$(BENCH_VENV)/bin/python benchmarks/instructions.py --repeat 3
	$(BENCH_VENV)/bin/python benchmarks/waiting.py
	$(BENCH_VENV)/bin/python benchmarks/sessions.py
	$(BENCH_VENV)/bin/python benchmarks/fleet.py
	$(BENCH_VENV)/bin/python benchmarks/browser.py
	$(BENCH_VENV)/bin/python benchmarks/paths.py
	$(BENCH_VENV)/bin/python benchmarks/tiers.py
	$(BENCH_VENV)/bin/python benchmarks/broad.py
	$(BENCH_VENV)/bin/python benchmarks/status.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(COMPAT_VENV) .pytest_cache .hypothesis example_project/output*.json docs/_build dist
