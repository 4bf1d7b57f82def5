# syntax=docker/dockerfile:1
# The operator image: a static (musl) binary on distroless, non-root, no shell.
#   docker build -t vitess-operator:0.1.0 .
# e2e/tests/dockerfile.rs runs this build stage's `cargo build` line (same flags, same target)
# on the host, since this machine has no docker, and checks the binary runs.

FROM docker.io/library/rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p vitess-operator --bin vitess-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/vitess-operator /vitess-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/vitess-operator"]
CMD ["run"]
