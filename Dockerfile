# syntax=docker/dockerfile:1
# The watchkeeper image: one binary for the controller, `check`, and the agents that run in Jobs.
#
#   docker build -t REGISTRY/watchkeeper:TAG .
#
# Two stages: a Rust builder, and a small Debian runtime that runs as UID/GID 65532 (the chart's
# runAsUser) with no shell needed at run time. Debian slim rather than distroless because the
# BackupPolicy engine will need PostgreSQL's pg_dump/pg_restore in this image (see the runtime
# stage); builder and runtime share the Debian release, so the binary's glibc matches.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and the target directory between builds (BuildKit), so a
# source change does not rebuild the dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin watchkeeper \
    && install -D -m 0755 target/release/watchkeeper /out/watchkeeper

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: HTTPS probes, alert sinks and object storage verify servers against them.
# Later (BackupPolicy engine): add postgresql-client here for pg_dump/pg_restore, from PGDG's
# repository when servers newer than Debian's client must be dumped (pg_dump must be at least as
# new as the server).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
COPY --from=builder /out/watchkeeper /usr/local/bin/watchkeeper
USER 65532:65532
# /metrics, /healthz and /readyz of `watchkeeper controller`.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/watchkeeper"]
CMD ["--help"]

LABEL org.opencontainers.image.title="watchkeeper" \
      org.opencontainers.image.description="Kubernetes operator for health monitors, scheduled jobs, backups, maintenance windows and failover plans" \
      org.opencontainers.image.licenses="Apache-2.0"
