#!/usr/bin/env bash
# Usage: deploy/docker/base-images.sh
#
# Makes sure the two public base images Dockerfile.dual-fuse starts from
# exist in the local Docker engine, and builds them locally when they do
# not and no registry can be reached (a machine without registry access,
# like our CI): the Dockerfile is never changed, the images get the
# standard names.
#
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm from
#                          deb.debian.org, slimmed as the official image is
#                          (no docs, man pages or locales), `docker import`ed
#   golang:<minor>-bookworm  that image plus gcc, libc6-dev, git and
#                          ca-certificates and this machine's Go toolchain
#                          (/usr/local/go, or the `go` on PATH), with the
#                          environment of the official image (GOPATH=/go,
#                          GOTOOLCHAIN=local, PATH), trusting the extra
#                          certificate authorities this machine trusts
#
# An image that exists (pulled from Docker Hub, or made by an earlier run)
# is left alone. If a registry is reachable, `docker pull` is tried first.
# Nothing is cached in the repository: the root filesystem is built in a
# temporary directory that is removed on exit. Needs root (debootstrap) and
# debootstrap (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

dockerfile=Dockerfile.dual-fuse
arg_default() { sed -n "s/^ARG $1=//p" "$dockerfile" | head -n1; }
debian_image=$(arg_default RUNTIME_BASE)
golang_image=$(arg_default GO_IMAGE)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -z "$debian_image" ] || [ -z "$golang_image" ]; then
	echo "base-images: cannot read ARG RUNTIME_BASE / ARG GO_IMAGE from $dockerfile" >&2
	exit 1
fi

log() { echo "base-images: $*" >&2; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
try_pull() {
	[ "${LIGHTHOUSE_NO_PULL:-}" = 1 ] && return 1
	timeout 60 docker pull -q "$1" >/dev/null 2>&1
}

work=$(mktemp -d /tmp/lighthouse-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

build_debian() {
	local image=$1 suite=${1#*:}
	suite=${suite%-slim}
	command -v debootstrap >/dev/null 2>&1 || {
		log "installing debootstrap"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
	}
	local root=$work/rootfs
	log "building $image: debootstrap --variant=minbase $suite from $mirror (a minute or two)"
	debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
		tail -n 30 "$work/debootstrap.log" >&2
		log "debootstrap failed (log above)"
		return 1
	}
	# What the official slim image does: no documentation, man pages or
	# translations, now or for packages installed later.
	cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian "$root"/usr/share/linda
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
	# apt keeps no downloaded packages in a layer (the official docker-clean).
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
	printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	# The official image's sources: the release, its updates, security.
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
		"$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
	: >"$root/etc/resolv.conf"   # Docker provides it; never the build host's
	: >"$root/etc/hostname"
	tar --numeric-owner --xattrs -C "$root" \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' -c . |
		docker import \
			--change 'CMD ["bash"]' \
			--change 'LABEL org.lighthouse.local-base=debootstrap' \
			- "$image" >/dev/null
	log "$image built locally ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_golang() {
	local image=$1 want=${1#*:}
	want=${want%%-*}
	local goroot gover
	goroot=$(command -v go >/dev/null 2>&1 && go env GOROOT || echo /usr/local/go)
	[ -x "$goroot/bin/go" ] || { log "no Go toolchain on this machine (looked at $goroot): install Go $want to build $image"; return 1; }
	gover=$("$goroot/bin/go" env GOVERSION)
	gover=${gover#go}
	case "$gover" in
	"$want" | "$want".*) ;;
	*) log "this machine's Go is $gover, but $dockerfile wants $image: install Go $want"; return 1 ;;
	esac
	log "building $image from $debian_image and this machine's Go $gover ($goroot)"
	# The context: the Go root, and the certificate authorities this
	# machine trusts beyond Debian's (/usr/local/share/ca-certificates),
	# so that module downloads work in builds behind a TLS-intercepting
	# egress proxy exactly as they do on the machine itself.
	local ctx=$work/golang-context
	mkdir -p "$ctx/ca"
	cp -a "$goroot" "$ctx/go"
	find /usr/local/share/ca-certificates -name '*.crt' -type f -exec cp {} "$ctx/ca/" \; 2>/dev/null || true
	DOCKER_BUILDKIT=0 docker build -q --network host -t "$image" --label org.lighthouse.local-base=host-go \
		--build-arg BASE="$debian_image" --build-arg GOLANG_VERSION="$gover" \
		-f deploy/docker/golang.Dockerfile "$ctx" >/dev/null 2>"$work/golang-build.log" || {
		cat "$work/golang-build.log" >&2
		return 1
	}
	log "$image built locally"
}

if have "$debian_image"; then
	log "$debian_image: present"
elif try_pull "$debian_image"; then
	log "$debian_image: pulled"
else
	build_debian "$debian_image"
fi
if have "$golang_image"; then
	log "$golang_image: present"
elif try_pull "$golang_image"; then
	log "$golang_image: pulled"
else
	build_golang "$golang_image"
fi
