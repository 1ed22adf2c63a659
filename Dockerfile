# syntax=docker/dockerfile:1
# Sapha in a container: build with the Rust toolchain, run from a small
# non-root image. One image, one binary; the command picks the job:
#   docker build -t sapha .
#   docker run -p 8080:8080 sapha hub --listen 0.0.0.0:8080 --nats-url nats://nats:4222
#   docker run -p 8081:8081 -e SAPHA_INGEST_TOKENS=... sapha ingest --listen 0.0.0.0:8081
#   docker run -e SAPHA_VAPID_PRIVATE_KEY=... sapha notify
# Without registry access, build FROM scratch around a binary built here:
# scripts/container-image.sh (deploy/container/Containerfile.scratch).

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sapha \
 && install -D -m 0755 target/release/sapha /out/sapha

# distroless/cc: glibc, libgcc, CA certificates (https webhooks, Web Push,
# LINE), /etc/passwd with `nonroot` (65532); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sapha /usr/local/bin/sapha
USER 65532:65532
EXPOSE 8080 8081
# `sapha probe` is a plain HTTP GET (no curl in this image). It probes the
# hub's port; for ingest (8081) set the check in compose/k8s instead.
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/sapha", "probe", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/sapha"]
CMD ["hub", "--listen", "0.0.0.0:8080"]
