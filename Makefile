# The two commands a newcomer needs are `make demo` and `make test` (see README.md).

SHELL := /bin/bash
CLUSTER := e2e/cluster
KUBECONFIG_E2E := $(CURDIR)/e2e/.state/kubeconfig
BIN := target/debug/vitess-operator

.PHONY: demo test check lint fmt crds build cluster-up cluster-down e2e unit

## demo: local control plane, CRDs, the example cluster, its status.
demo: build cluster-up
	@eval "$$($(CLUSTER) env)"; \
	set -e; \
	echo "== installing CRDs (server-side apply)"; \
	kubectl apply --server-side --force-conflicts -f crds/ >/dev/null; \
	kubectl wait --for condition=established --timeout=60s crd --all >/dev/null; \
	echo "== validating examples/initial-cluster.yaml offline"; \
	$(BIN) validate -f examples/initial-cluster.yaml; \
	echo "== applying it"; \
	kubectl apply --server-side -f examples/initial-cluster.yaml; \
	echo "== what the operator will create for it (vitess-operator render)"; \
	$(BIN) render -f examples/initial-cluster.yaml | kubectl apply --dry-run=client -o name -f - ; \
	echo "== kubectl get vt,vtc,vtk,vts,etcdls,pods"; \
	kubectl get vt,vtc,vtk,vts,etcdls,pods; \
	echo; echo "The controllers (vitess-operator run) are not built yet: see README.md, 'What works today'."

## test: formatting, lints, then every test (unit, CLI, and end-to-end on the local control plane).
test: check cluster-up
	cargo test --workspace --locked

## check: formatting and clippy, as CI wants them.
check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint: check

fmt:
	cargo fmt --all

build:
	cargo build --locked

## crds: regenerate crds/ from the Rust types (a test fails when they are stale).
crds:
	cargo run --quiet --locked -- crd --out-dir crds

cluster-up:
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

## unit: the tests that need no cluster.
unit:
	cargo test --locked -p vitess-operator
