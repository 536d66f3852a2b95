# The README's quick start: `make demo` runs the example crawl through the local proxy
# farm; `make test` installs everything and runs the tests. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_VENV := .venv-bench

.PHONY: demo proxycheck test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	cd example_project && ../$(BIN)/python -m scrapy_proxybalance.testing.farm --run \
		../$(BIN)/python -m scrapy crawl pages -O output.json

proxycheck: $(STAMP)
	cd example_project && ../$(BIN)/python -m scrapy_proxybalance.testing.farm --run ../$(BIN)/python -m scrapy proxycheck

test: $(STAMP)
	$(BIN)/python -m pytest

# Benchmarks run in their own environment, with scrapy-rotating-proxies to compare against.
$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/selection.py
	$(BENCH_VENV)/bin/python benchmarks/crawl.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .hypothesis example_project/output.json
