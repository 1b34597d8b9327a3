# Dockerfile: the kafkasnap container image the k8s-cronjob/ manifests run (entrypoint: the
# kafkasnap binary, non-root uid/gid 10001 as in their securityContext, no shell needed).
# Build: docker build -t REGISTRY/kafkasnap:TAG . ; then set that image in
# k8s-cronjob/kustomization.yaml (`images:`) and restore-job.yaml.

FROM rust:1-bookworm AS build
# What rdkafka's bundled librdkafka build (cmake-build feature) needs, as in scripts/lib.sh.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kafkasnap

FROM debian:bookworm-slim
# Runtime libraries the binary links (libssl3; zlib and libgcc are in the base image) and CA
# certificates for TLS to Kafka and the object store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 kafkasnap \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin kafkasnap
COPY --from=build /src/target/release/kafkasnap /usr/local/bin/kafkasnap
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
ENV TMPDIR=/tmp
ENTRYPOINT ["/usr/local/bin/kafkasnap"]
CMD ["--help"]
