# The README's quick start: `make demo` runs the example crawl through the local proxy
# farm; `make test` installs everything and runs the tests. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	cd example_project && ../$(BIN)/python -m scrapy_proxybalance.farm --run \
		../$(BIN)/python -m scrapy crawl pages -O output.json

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis example_project/output.json
