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
# pytest-xdist workers for the suite: its integration tests wait on brokers and processes much
# of the time, so more workers than cores pay (tests/conftest.py: one broker per run anyway).
TEST_WORKERS ?= 3
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadscope
KUSTOMIZE_VERSION := 5.7.1
KUSTOMIZE := $(TOOLS)/bin/kustomize
PROMETHEUS_BIN := /usr/bin/prometheus
PROMTOOL_BIN := /usr/bin/promtool

.PHONY: help install prometheus render-k8s lint test test-unit test-integration train demo cycle serve bench clean broker-start broker-stop s3-start s3-stop

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	$(PYTHON_BOOTSTRAP) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON_BOOTSTRAP)
	@touch $@

install: $(VENV)/.installed $(KUSTOMIZE) ## create .venv with the locked dependencies and the project

# deploy/k8s: kustomize, built from the Go module proxy (~30 s once), for the manifest tests.
$(KUSTOMIZE):
	mkdir -p $(TOOLS)/bin
	GOBIN=$(abspath $(TOOLS))/bin GOFLAGS=-buildvcs=false go install sigs.k8s.io/kustomize/kustomize/v5@v$(KUSTOMIZE_VERSION)

# The observability tests run a real Prometheus server and promtool: Debian's `prometheus`
# package, installed once when missing (apt-get as root). The tests start their own server on a
# free port; the packaged service is not used.
prometheus: ## install Debian's prometheus (server + promtool) unless both are in /usr/bin
	@if [ -x $(PROMETHEUS_BIN) ] && [ -x $(PROMTOOL_BIN) ]; then :; else \
		apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			-o DPkg::Lock::Timeout=300 prometheus; \
	fi

render-k8s: $(KUSTOMIZE) ## render every deploy/k8s overlay into build/k8s/<overlay>.yaml
	@mkdir -p build/k8s
	@for dir in $$(find deploy/k8s/overlays -name kustomization.yaml -printf '%h\n' | sort); do \
		out=build/k8s/$$(echo $${dir#deploy/k8s/overlays/} | tr / -).yaml; \
		$(KUSTOMIZE) build $$dir > $$out && echo "$$dir -> $$out"; \
	done

# serve/ (the HTTP front door) is linted once it exists.
LINT_PATHS := contract training scoring consumer serve quality tests benchmarks deploy

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

test: install prometheus lint ## the whole suite: lint, unit, integration (starts and stops its own Kafka broker)
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-unit: install prometheus ## unit tests only (no broker)
	$(PY) -m pytest $(PYTEST_PARALLEL) tests/unit $(PYTEST_ARGS)

test-integration: install prometheus ## integration tests only (real broker)
	$(PY) -m pytest $(PYTEST_PARALLEL) tests/integration $(PYTEST_ARGS)

train: install ## train both variants on the shared dataset into $(REGISTRY)/
	$(PY) -m training --data $(DATA) --out $(REGISTRY) --n-iter $(N_ITER)

# The demo script imports its siblings (report.py, ...) and benchmarks.replay from the repository root.
demo: install ## the main job: local broker, training (if no build), consumer, replay, summary
	PYTHONPATH=$(CURDIR) $(PY) deploy/local/demo.py --data $(DATA) --registry $(REGISTRY) $(DEMO_ARGS)

# The retraining cycle on the demo's services: stretch A (the dataset, real outcomes), stretch B
# (sessions whose behaviour changed), `python -m training cycle` over B, the champion vs the
# challenger on B's freshest outcomes. CYCLE_ARGS=--s3: registry, datasets and report in S3.
cycle: install ## the retraining cycle end to end: behaviour changes, live quality drops, collect -> train -> compare, how to promote
	PYTHONPATH=$(CURDIR) $(PY) deploy/local/demo_cycle.py --data $(DATA) --registry $(REGISTRY) $(CYCLE_ARGS)

# Like the demo: the newest build of $(DATA) in $(REGISTRY) (one trained when there is none), then
# `python -m serve` in the foreground; SERVE_PORT=... and MODEL_URI=... in the environment win.
serve: install ## the HTTP front door on the newest build of $(DATA) in $(REGISTRY), at http://127.0.0.1:8080
	PYTHONPATH=$(CURDIR) $(PY) deploy/local/serve_local.py --data $(DATA) --registry $(REGISTRY) $(SERVE_ARGS)

bench: install ## consumer throughput/latency vs the local broker (BENCH_ARGS="--quick", "--events N", "--shadow only")
	$(PY) -m benchmarks --registry $(REGISTRY) --data $(DATA) $(BENCH_ARGS)

broker-start: ## start a local Kafka broker by hand (BROKER_NAME=dev, BROKER_ARGS="--sasl --port 9092")
	deploy/local/kafka.sh start --name $(or $(BROKER_NAME),dev) $(BROKER_ARGS)

broker-stop: ## stop that broker and remove its data (BROKER_STOP_ARGS=--keep-data keeps it)
	deploy/local/kafka.sh stop --name $(or $(BROKER_NAME),dev) $(BROKER_STOP_ARGS)

s3-start: ## start a local S3 server by hand (S3_NAME=dev, S3_ARGS="--bucket models --port 9000")
	deploy/local/s3.sh start --name $(or $(S3_NAME),dev) $(S3_ARGS)

s3-stop: ## stop that S3 server and remove its data (S3_STOP_ARGS=--keep-data keeps it)
	deploy/local/s3.sh stop --name $(or $(S3_NAME),dev) $(S3_STOP_ARGS)

clean: ## remove caches and local broker and S3 data (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .local/kafka/data .local/s3/data
