# sylkbox: `make run` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test test-long lint bench bench-audio bench-discovery clean system-deps-run system-deps-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps-run:
	scripts/system-deps.sh run

system-deps-test:
	scripts/system-deps.sh test

run: system-deps-run $(STAMP)
	$(VENV)/bin/sylkbox run $(ARGS)

test: system-deps-test $(STAMP)
	$(PY) -m pytest -q $(ARGS)

# the 2-minute impairment call and other long checks (not part of `make test`)
test-long: system-deps-test $(STAMP)
	SYLKBOX_LONG=1 $(PY) -m pytest -q tests/interop/test_impairment.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check sylkbox tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: system-deps-test $(STAMP)
	$(PY) bench/sip_load.py $(ARGS)

bench-audio: system-deps-test $(STAMP)
	$(PY) bench/audio_capacity.py
	$(PY) bench/audio_latency.py
	$(PY) bench/audio_quality.py

# Bonjour: start -> first record and join -> note as seen by avahi (root: network namespaces)
bench-discovery: system-deps-test $(STAMP)
	$(PY) bench/discovery.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
