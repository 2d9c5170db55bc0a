# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint format openapi clean bench bench-smoke wrk fuzz

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml tests/idp/package-lock.json tests/validator/package-lock.json \
  | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	# The external identity provider the security tests start (oidc-provider, Node 20).
	cd tests/idp && npm ci --no-audit --no-fund --silent
	# The official HL7 R4 examples that tests/test_hl7_examples.py loads unchanged.
	cd tests/hl7-examples && npm ci --no-audit --no-fund --silent
	# The independent R4 validator every response the suite receives goes through (@medplum/core).
	cd tests/validator && npm ci --no-audit --no-fund --silent
	cd tests/clients && npm ci --no-audit --no-fund --silent
	touch $(VENV)/.installed $@
$(VENV)/.test-installed: tests/hl7-examples/package-lock.json

run: $(VENV)/.installed
	$(BIN)/keyworker db upgrade
	$(BIN)/keyworker load-demo --if-empty
	@echo ""
	@echo "Keyworker FHIR is starting at http://$(HOST):$(PORT)/fhir (access tokens required)"
	@$(BIN)/keyworker clients demo --server http://$(HOST):$(PORT)
	@echo "  Capability:  curl -s http://$(HOST):$(PORT)/fhir/metadata"
	@echo "  API docs:    http://$(HOST):$(PORT)/docs"
	@echo ""
	$(BIN)/keyworker serve --host $(HOST) --port $(PORT)

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check service fhir_mappings tests bench
	$(BIN)/ruff format --check service fhir_mappings tests bench
	$(BIN)/mypy

format: $(VENV)/.test-installed
	$(BIN)/ruff check --fix service fhir_mappings tests bench
	$(BIN)/ruff format service fhir_mappings tests bench

# The live fuzz test for ten minutes rather than CI's 90 s (or: make fuzz FUZZ_SECONDS=3600).
fuzz: $(VENV)/.test-installed
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) $(BIN)/python -m pytest tests/test_fuzz_live.py

openapi: $(VENV)/.installed
	$(BIN)/keyworker export-openapi openapi/openapi.json

# Issue 7's benchmark (see README "Performance"): make bench BENCH_ARGS="--patients 1000000".
wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

bench: $(VENV)/.installed wrk
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# CI's smoke run: 1,000 patients, 2 s per workload, 1 run. Never judges timings; fails only when
# a workload cannot run or more than 1% of its requests fail.
bench-smoke: $(VENV)/.installed wrk
	$(BIN)/python -m bench.run --patients 1000 --duration 2 --warmup 1 --runs 1 \
	  --results var/bench-smoke $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
