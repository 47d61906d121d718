# syntax=docker/dockerfile:1

# ---- build -------------------------------------------------------------------
# kith needs Rust 1.94 or newer (edition 2024, rust-version = "1.94").
FROM rust:1.95-bookworm AS builder
WORKDIR /app

# Dependencies first: the manifests, the lockfile and the two small workspace
# crates, built against a stub `kith` crate. This layer is rebuilt only when
# Cargo.toml, Cargo.lock, entity/ or migration/ change.
COPY Cargo.toml Cargo.lock ./
COPY entity entity
COPY migration migration
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin kith \
    && rm -rf src

# Then the real sources. COPY keeps the files' modification times, which may be
# older than the stub build, so touch them to make cargo rebuild the kith crate.
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin kith

# ---- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 kith \
    && useradd --system --uid 10001 --gid kith --home-dir /var/lib/kith \
        --no-create-home --shell /usr/sbin/nologin kith \
    && mkdir -p /var/lib/kith \
    && chown kith:kith /var/lib/kith

COPY --from=builder /app/target/release/kith /usr/local/bin/kith

# The default database, sqlite://kith.db?mode=rwc, is created in the working
# directory; mount a volume here to keep it (or set DATABASE_URL to Postgres).
WORKDIR /var/lib/kith
USER kith

# kith listens on 127.0.0.1:8080 by default, unreachable from outside a container.
ENV KITH_LISTEN=0.0.0.0:8080
EXPOSE 8080

# No HEALTHCHECK: the image has no curl. Probe /healthz or /readyz from outside
# (an orchestrator's HTTP probe).
ENTRYPOINT ["kith"]
CMD ["serve"]
