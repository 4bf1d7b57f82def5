# The two commands a newcomer needs are `make demo` and `make test` (see README.md).

SHELL := /bin/bash
CLUSTER := e2e/cluster
KUBECONFIG_E2E := $(CURDIR)/e2e/.state/kubeconfig
BIN := target/debug/vitess-operator

.PHONY: demo demo-bins demo-stop test test-steps test-build compat faults check lint fmt crds build cluster-up cluster-down unit tools bench

## demo: local control plane, CRDs, the operator, the example cluster, its status; on the real
## node also its primary and a query through vtgate (on-real-node places the example there).
## The Rust build runs beside `e2e/cluster up` (e2e/beside: on a cold machine each uses the
## time the other leaves a core idle; up's log is target/cluster-up.log).
demo:
	e2e/beside --log target/cluster-up.log $(CLUSTER) up -- $(MAKE) --no-print-directory build demo-bins
	e2e/demo

demo-bins:
	cargo build --locked -p vitess-operator-e2e --bin on-real-node --bin operator-overlay

## test: formatting, lints, then every test (unit, CLI, and end-to-end on the local control plane).
## Formatting, lints, `tools` and the test build run beside `e2e/cluster up`, as for the demo;
## all of it beside the image's static build (e2e/image-binary, at idle priority, so it takes
## only what the rest leaves), which e2e/tests/dockerfile.rs then finds done.
test:
	e2e/beside --nice --optional --log target/image-binary.log e2e/image-binary -- $(MAKE) --no-print-directory test-steps

test-steps:
	e2e/beside --log target/cluster-up.log $(CLUSTER) up -- $(MAKE) --no-print-directory check tools test-build
	cargo test --workspace --locked

test-build:
	cargo test --workspace --locked --no-run

## compat: parity with the Go operator, from its source in ../shared/anchors/ (VITESS_OPERATOR_ANCHORS
## overrides; outside CI the tests skip without it, under CI=true they fail): every field path of
## its CRDs is in ours or a documented refusal, every cluster YAML of its end-to-end suite
## validates, renders and applies (server-side dry run) on the local control plane, and a cluster
## the Go operator (built by e2e/go-operator) made is taken over without a pod restarted.
compat: build cluster-up
	cargo test --locked -p vitess-operator-e2e --features compat --test compat_yaml --test compat_takeover

## faults: the long runs of the fault suite (issue 18); `make test` runs their fast subset.
## FAULT_RUNS runs of each operator-crash scenario (e2e/tests/faults.rs: SIGKILL during a first
## election, a drain of the primary, a scale-down, a backup request, a rolling update, a
## turndown, and of the leader of two replicas mid-drain) and FAULT_OUTAGE_RUNS of each outage
## (vtctld down or hanging during a drain and during registration, kube-apiserver or its etcd
## SIGKILLed during a drain, the primary's node and pod lost); table
## in target/e2e-figures/faults.md; then FAULT_CASES generated hostile VitessClusters
## (tests/mutations.rs). Seeds are printed: FAULT_SEED=<seed> and PROPTEST_RNG_SEED=<seed>
## replay them.
FAULT_RUNS ?= 20
FAULT_OUTAGE_RUNS ?= 10
FAULT_CASES ?= 20000
faults: build cluster-up
	FAULT_RUNS=$(FAULT_RUNS) FAULT_OUTAGE_RUNS=$(FAULT_OUTAGE_RUNS) \
	  cargo test --locked -p vitess-operator-e2e --test faults -- --nocapture
	seed=$$(date +%s); echo "PROPTEST_RNG_SEED=$$seed PROPTEST_CASES=$(FAULT_CASES)"; \
	PROPTEST_RNG_SEED=$$seed PROPTEST_CASES=$(FAULT_CASES) cargo test --locked --test mutations

## bench: the scale benchmark (e2e/bench/README.md): the operator's release build against the
## local control plane at 1, 8, 64 and 256 shards and 10 clusters of 8; prints the table and
## writes e2e/bench/results/<date>.{json,png}. Arguments: make bench BENCH_ARGS="--sizes 1,8".
bench: cluster-up
	cargo build --release --locked -p vitess-operator
	cargo bench --locked -p vitess-operator-e2e --bench scale -- $(BENCH_ARGS)

## check: formatting and clippy, as CI wants them.
check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint: check

fmt:
	cargo fmt --all

build:
	cargo build --locked

## crds: regenerate crds/ from the Rust types (a test fails when they are stale), and their
## copy in config/crd/ (kustomize reads no file outside config/; tests/config.rs compares them).
crds:
	cargo run --quiet --locked -- crd --out-dir crds
	cargo run --quiet --locked -- crd --out-dir config/crd

cluster-up:
	$(CLUSTER) up

## tools: what the install tests need besides the control plane: the static (musl) Rust target of
## the Dockerfile (its C compiler, musl-gcc, comes from Debian's musl-tools, see .ci/run) and
## Helm, built from its Go module into ~/.cache/vitess-operator/tools/helm-<version>/.
tools:
	rustup target add x86_64-unknown-linux-musl || echo "warning: no musl target; e2e/tests/dockerfile.rs will build for the host target"
	e2e/helm >/dev/null

cluster-down: demo-stop
	$(CLUSTER) down

demo-stop:
	e2e/demo stop

## unit: the tests that need no cluster.
unit:
	cargo test --workspace --locked --exclude vitess-operator-e2e
