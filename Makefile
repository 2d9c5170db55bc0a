# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint format openapi clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/keyworker db upgrade
	$(BIN)/keyworker load-demo --if-empty
	@echo ""
	@echo "Keyworker FHIR is starting at http://$(HOST):$(PORT)/fhir"
	@echo "  Development mode: authentication is OFF (--insecure-no-auth)."
	@echo "  First call:  curl -s 'http://$(HOST):$(PORT)/fhir/CareTeam/ct-amara-okafor'"
	@echo "  Capability:  curl -s http://$(HOST):$(PORT)/fhir/metadata"
	@echo "  API docs:    http://$(HOST):$(PORT)/docs"
	@echo ""
	$(BIN)/keyworker serve --host $(HOST) --port $(PORT) --insecure-no-auth

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check service fhir_mappings tests
	$(BIN)/ruff format --check service fhir_mappings tests
	$(BIN)/mypy

format: $(VENV)/.test-installed
	$(BIN)/ruff check --fix service fhir_mappings tests
	$(BIN)/ruff format service fhir_mappings tests

openapi: $(VENV)/.installed
	$(BIN)/keyworker export-openapi openapi/openapi.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
