# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-case

.PHONY: venv browser demo test lint bench clean

venv: $(VENV)/.installed

# Python environment, then three.js and the glTF validator from npm; three.js is vendored
# into the package so the viewer works with no network.
$(VENV)/.installed: pyproject.toml package.json package-lock.json scripts/vendor_three.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/vendor_three.py
	touch $@

# Debian's chromium for the browser tests (Playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the viewer tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null) || \
	  echo "warning: could not install chromium; the browser tests will be skipped"; }

demo: venv
	$(BIN)/twinsep demo --out $(DEMO)

lint: venv
	$(BIN)/ruff check src tests benchmarks scripts

# `make test` prints its wall time: the tests alone, and in all since make started (set-up,
# browser and lint included); it exits with pytest's status.
MAKE_START := $(shell date +%s)

test: venv browser lint
	@start=$$(date +%s); $(BIN)/python -m pytest -q; rc=$$?; end=$$(date +%s); \
	echo "make test: tests $$((end - start)) s; in all (set-up, lint, tests) $$((end - $(MAKE_START))) s"; \
	exit $$rc

bench: venv
	$(BIN)/python -m pytest benchmarks --benchmark-enable -q

clean:
	rm -rf $(VENV) $(DEMO) node_modules .pytest_cache .ruff_cache
