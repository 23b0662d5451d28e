# One entry point for developers, CI and the demo. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/online_shoppers_intention.csv
REGISTRY ?= registry
N_ITER ?= 20
PYTEST_ARGS ?=

.PHONY: help install lint test test-unit test-integration train demo bench clean broker-start broker-stop

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	$(PYTHON_BOOTSTRAP) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON_BOOTSTRAP)
	@touch $@

install: $(VENV)/.installed ## create .venv with the locked dependencies and the project

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check contract training consumer tests benchmarks
	$(VENV)/bin/ruff format --check contract training consumer tests benchmarks
	$(VENV)/bin/mypy

test: install lint ## the whole suite: lint, unit, integration (starts and stops its own Kafka broker)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install ## unit tests only (no broker)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install ## integration tests only (real broker)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

train: install ## train both variants on the shared dataset into $(REGISTRY)/
	$(PY) -m training --data $(DATA) --out $(REGISTRY) --n-iter $(N_ITER)

clean: ## remove caches and local broker data (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .local/kafka/data
