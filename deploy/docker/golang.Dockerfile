# The golang:<version>-bookworm base image, made locally by
# deploy/docker/base-images.sh when no registry can be reached: Debian
# bookworm (itself debootstrapped) plus what the official image's
# buildpack-deps layers give a Go build (gcc, libc6-dev, git, make,
# pkg-config, ca-certificates), this machine's Go toolchain, and the
# official image's environment. The build context holds go/ (the Go root)
# and ca/ (the machine's own extra certificate authorities, often none).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates gcc libc6-dev git make pkg-config \
 && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ARG GOLANG_VERSION
ENV GOLANG_VERSION=${GOLANG_VERSION} \
    GOTOOLCHAIN=local \
    GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY go/ /usr/local/go/
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version
WORKDIR /go
