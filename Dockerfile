# syntax=docker/dockerfile:1
#
# saga-account container image.
#
#   docker build -t saga-account .
#   docker run --rm -p 8080:8080 -p 8000:8000 -p 8081:8081 -v saga-data:/data saga-account
#
# Needs BuildKit for the cache mounts below: the default builder of Docker 23+
# (with the buildx plugin) and of `docker compose`. Debian's docker-compose
# 1.29 builds through the `docker build` CLI, so with Debian 12's docker.io
# (20.10, classic builder by default) export DOCKER_BUILDKIT=1 first.
#
# Caching: the runtime stage's package and user layers come before the binary,
# so they are rebuilt only when this file changes. In the builder, the cargo
# registry and the target directory live in BuildKit cache mounts: after the
# first build on a builder, a source change recompiles only the crates that
# changed, never the dependencies, and only crates new in Cargo.lock are
# downloaded. (No "copy the manifests, build stub sources" layer: cargo
# refuses a manifest whose declared targets are missing, so such a layer would
# have to mirror every bin, bench and workspace member and break when one is
# added.) A builder without a persistent cache (a fresh CI runner) builds
# everything, as any first build does. What enters the build context is
# decided by the allowlist in .dockerignore.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# The sources (Cargo.toml, Cargo.lock, src, proto, migrations, build.rs,
# benches, loadgen, templates, root *.toml: the allowlist in .dockerignore),
# then the release build, the same command CI and the README use. Crates are
# downloaded into the registry cache mount and compiled into the target cache
# mount; the binary is copied out of the latter into the image layer.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin saga-account \
 && install -D -m 0755 target/release/saga-account /out/saga-account

# --------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to SMTP, MySQL and the trace collector. Not pinned:
# bookworm's point releases replace old versions.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric non-root user, so that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 saga \
 && useradd --system --uid 10001 --gid saga --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin saga \
 && mkdir -p /data /app \
 && chown saga:saga /data \
 && chmod 0750 /data

COPY --from=builder /out/saga-account /usr/local/bin/saga-account

# The embedded SQLite database, the generated JWT secret (SQLite only) and
# development mail files live in DATA_DIR. An optional config.yml is read from
# the working directory (/app/config.yml), or from CONFIG_FILE.
ENV DATA_DIR=/data \
    BIND_ADDRESS=0.0.0.0 \
    HTTP_PORT=8080 \
    GRPC_PORT=8000 \
    PROM_PORT=8081
WORKDIR /app
VOLUME ["/data"]
USER 10001:10001

# HTTP API, /healthz, /readyz, /.well-known/jwks.json
EXPOSE 8080
# gRPC Auth, reflection, grpc.health.v1
EXPOSE 8000
# Prometheus /metrics
EXPOSE 8081
# (The operator API, ADMIN_PORT, is off by default and bound to 127.0.0.1:
# it is deliberately not exposed.)

# `healthcheck` asks GET http://127.0.0.1:$HTTP_PORT/readyz: exit 0 on 200, 1
# otherwise; no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["saga-account", "healthcheck"]

# SIGTERM: unready at once, serve SHUTDOWN_DELAY_SECONDS more, then finish the
# requests in flight within SHUTDOWN_TIMEOUT_SECONDS. Give `docker stop` a -t
# (compose: stop_grace_period) larger than their sum.
STOPSIGNAL SIGTERM
ENTRYPOINT ["saga-account"]
CMD ["serve"]
