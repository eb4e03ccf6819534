# syntax=docker/dockerfile:1
#
# renderd container image: `docker build -t renderd .`
#
# Not built by this repository's tests: there is no Docker engine on the machines that run them.
# The Helm chart under helm/renderd is rendered and validated there instead (tests/helm/check).
#
# Both stages start from the same NVIDIA CUDA Ubuntu base so that the FFmpeg libraries the
# binary is linked against at build time are the very ones the runtime stage installs (the
# rust:*-bookworm images are Debian 12, FFmpeg 5.1; no CUDA image is built on Debian, and
# mixing the two would load other FFmpeg sonames at run time). Rust comes from rustup.
#
# At run time the NVIDIA container toolkit injects the driver's libraries for the capabilities
# named in NVIDIA_DRIVER_CAPABILITIES: `graphics` brings the Vulkan ICD, `video` NVENC
# (libnvidia-encode), `compute` CUDA, `utility` nvidia-smi. Without a GPU, Vulkan falls back to
# Mesa's lavapipe (CPU) and encoding to libx264.

ARG BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04
ARG RUST_VERSION=1.95.0

FROM ${BASE_IMAGE} AS builder
ARG RUST_VERSION
ENV DEBIAN_FRONTEND=noninteractive
# scripts/setup-system's build list (FFmpeg development libraries, clang for bindgen, glslang
# for the shaders), plus curl for rustup.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential clang libclang-dev pkg-config glslang-tools \
      libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev \
      libswscale-dev libswresample-dev \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}"
WORKDIR /src
COPY . .
# The binary is copied out inside the same step: target/ is a cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin renderd \
 && install -m 0755 target/release/renderd /usr/local/bin/renderd

FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# FFmpeg runtime libraries (Ubuntu 24.04 sonames; they follow the base image), the Vulkan
# loader with Mesa's lavapipe as the fallback device, the GLVND libraries NVIDIA's Vulkan ICD
# loads through, and the fonts the reference renderer drew with.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libavcodec60 libavformat60 libavutil58 libswscale7 libswresample4 \
      libvulkan1 mesa-vulkan-drivers \
      libglvnd0 libgl1 libglx0 libegl1 libx11-6 libxext6 \
      fonts-noto-cjk fonts-liberation2 fonts-noto-color-emoji fontconfig \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && fc-cache -f
# A fixed, numeric non-root user (Kubernetes' runAsNonRoot checks the number).
RUN groupadd --system --gid 10001 renderd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/renderd \
      --shell /usr/sbin/nologin renderd \
 && mkdir -p /var/lib/renderd/data /etc/renderd \
 && chown -R 10001:10001 /var/lib/renderd
COPY --from=builder /usr/local/bin/renderd /usr/local/bin/renderd
# The container default: listen on every interface (the embedded default is loopback). The
# Helm chart mounts its own renderd.toml over this one.
COPY <<'TOML' /etc/renderd/renderd.toml
[server]
listen = "0.0.0.0:50051"

[telemetry]
metrics_listen = "0.0.0.0:9090"
TOML
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,video,graphics,utility \
    RENDERD_CONFIG=/etc/renderd/renderd.toml \
    HOME=/var/lib/renderd \
    XDG_CACHE_HOME=/tmp/cache
# Relative paths of the embedded defaults (./data/renderd.db, ./data/outputs, ./data/media,
# ./data/work, the dev JWT secret) resolve under /var/lib/renderd/data: mount a volume there.
# The root filesystem may be read-only; /tmp (shader and font caches) must be writable too.
WORKDIR /var/lib/renderd
VOLUME ["/var/lib/renderd/data"]
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/renderd"]
CMD ["serve"]
