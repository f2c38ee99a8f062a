# vnf-operator developer entry points. `make test` and `make demo` work on a clean clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
STATE ?= $(CURDIR)/.state

.PHONY: help
help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install everything the tests need (Debian packages, venv, Go-built control plane); idempotent
	@bash hack/install-deps.sh

.PHONY: lint
lint: deps ## ruff, mypy and the import-linter layer contracts
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

.PHONY: test
test: deps lint ## every test tier, after installing what it needs
	$(PYTEST) -m "unit or integration or e2e" -p no:cacheprovider

.PHONY: test-unit test-integration test-e2e
test-unit: deps ## unit tier only (no I/O)
	$(PYTEST) -m unit
test-integration: deps ## integration tier (real kube-apiserver + etcd)
	$(PYTEST) -m integration
test-e2e: deps ## e2e tier (real network functions in network namespaces)
	$(PYTEST) -m e2e

.PHONY: cluster-up cluster-down
cluster-up: deps ## start the local kube-apiserver + etcd; writes $(STATE)/cluster/admin.kubeconfig
	$(PY) -m vnf_operator.testing.controlplane up --state-dir $(STATE)/cluster
cluster-down: ## stop the local control plane, leaving no processes behind
	@[ -x $(PY) ] && $(PY) -m vnf_operator.testing.controlplane down --state-dir $(STATE)/cluster || true

.PHONY: kind-up kind-down
kind-up: ## (needs Docker; not run in CI) a kind cluster with CRDs and the operator installed
	bash hack/kind-up.sh
kind-down:
	kind delete cluster --name vnf-operator

.PHONY: demo
demo: deps ## the main job end to end on the embedded default
	bash hack/demo.sh

.PHONY: bench soak
bench: deps ## benchmarks (not part of make test); writes bench/results/
	$(PY) -m bench.run
soak: deps ## full-size fault and crash scenarios
	$(PYTEST) -m "soak" -p no:cacheprovider

.PHONY: image
image: ## build the operator image (needs a Docker engine)
	docker build -t vnf-operator:dev .

.PHONY: fmt
fmt: ## format the code
	$(VENV)/bin/ruff format operator tests
	$(VENV)/bin/ruff check --fix operator tests
