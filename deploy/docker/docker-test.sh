#!/usr/bin/env bash
# Usage: deploy/docker/docker-test.sh   (make docker-test; CI runs it)
#
# Builds every stage of Dockerfile.dual-fuse with a real Docker engine,
# starts docker-compose.dual-fuse.yml (the bridges and the proxy) and the
# migration-test job, and checks from outside what docs/containers.md
# promises: the workload passes through the proxy and its counters are
# exported; each bridge container runs only the bridge, as uid 1000, with
# no effective capability and CAP_SYS_ADMIN alone in its bounding set, the
# seccomp profile applied, a read-only root, a live FUSE mount and the
# library it was asked for; the runtime image holds the bridge and nothing
# that serves; the limits took effect; `down` leaves nothing behind.
#
# On a fresh Debian machine, as root, it installs what is missing (Docker's
# engine and compose from Debian, curl, jq), starts dockerd when none
# answers, makes /dev/fuse 0666 (the bridges run as uid 1000), and builds
# the base images locally when no registry has them
# (deploy/docker/base-images.sh).
#
# Every check prints "ok" or "FAIL" with what it saw; the script exits 1 if
# any failed. Containers, networks and volumes of the test project are
# removed on every exit path.
#
# Environment:
#   LIGHTHOUSE_DOCKER_TEST_OVERRIDE  a compose file layered over the real one
#       (-f), to see a check fail when a property is broken on purpose
#   LIGHTHOUSE_WORKLOAD_OPS          ops of the migration-test (default 5000)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

t0=$SECONDS
project=lighthouse-docker-test
compose_file=docker-compose.dual-fuse.yml
override=${LIGHTHOUSE_DOCKER_TEST_OVERRIDE:-}
work=$(mktemp -d /tmp/lighthouse-docker-test.XXXXXX)
failures=0
up=""

say() { printf '\n== [%3ds] %s\n' $((SECONDS - t0)) "$*"; }
ok() { printf '   ok    %s\n' "$*"; }
bad() {
	printf '   FAIL  %s\n' "$*"
	failures=$((failures + 1))
}
die() {
	printf 'docker-test: %s\n' "$*" >&2
	exit 1
}
# grep that selects nothing without failing a pipeline (pipefail)
lines() { grep "$@" || true; }
# expect WHAT GOT WANT
expect() {
	if [ "$2" = "$3" ]; then ok "$1: $2"; else bad "$1: got '$2', want '$3'"; fi
}

# ------------------------------------------------------------------ engine
say "Docker engine and compose"
[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages, starts dockerd and sets /dev/fuse to 0666)"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
	missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing from Debian: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
	echo "no Docker daemon answers: starting dockerd (log: /var/log/lighthouse-dockerd.log); it keeps running afterwards"
	setsid dockerd >/var/log/lighthouse-dockerd.log 2>&1 </dev/null &
	for _ in $(seq 60); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
	docker info >/dev/null 2>&1 || {
		tail -n 20 /var/log/lighthouse-dockerd.log >&2
		die "dockerd did not answer within 60 s (log above)"
	}
fi
# Compose v2 (the docker CLI plugin) when there is one, else the Python
# docker-compose 1.x that Debian bookworm packages; the compose file suits
# both. Builds use the classic builder (DOCKER_BUILDKIT=0): it works with
# every docker CLI, with or without the buildx plugin, and uses images that
# exist only locally (the bases made below) without asking a registry.
if docker compose version >/dev/null 2>&1; then
	compose_cmd=(docker compose)
else
	compose_cmd=(docker-compose)
fi
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
echo "engine $(docker version -f '{{.Server.Version}}'), client $(docker version -f '{{.Client.Version}}'), compose: ${compose_cmd[*]} $("${compose_cmd[@]}" version --short 2>/dev/null || true)"

compose() {
	local files=(-f "$compose_file")
	[ -n "$override" ] && files+=(-f "$override")
	"${compose_cmd[@]}" -p "$project" "${files[@]}" "$@"
}
all_profiles=(--profile migration-test --profile monitoring --profile dev --profile benchmark)
# The container of a service (compose 1.x warns on stderr, every time, that
# it ignores deploy.resources.reservations.cpus: docs/containers.md).
cid() { compose "${all_profiles[@]}" ps -q "$1" 2>/dev/null; }

# The bridges run as uid 1000 and mount through the setuid fusermount3,
# which opens /dev/fuse as that user: 0666, as distributions ship it.
[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -c /dev/fuse ] || die "no /dev/fuse: load the fuse module (modprobe fuse)"
chmod 0666 /dev/fuse
# The bridges' FUSE mounts, in every mount namespace on this machine (the
# containers' included), found by their mount point: the tests and
# `lighthouse up` running on the host mount elsewhere.
container_fuse_mounts() {
	cat /proc/[0-9]*/mountinfo 2>/dev/null | awk '$5 == "/var/cache/lighthouse/mnt" && / - fuse\.lighthouse /' | sort -u | wc -l
}

cleanup() {
	local rc=$?
	if [ -n "$up" ]; then
		if [ $rc -ne 0 ] || [ $failures -ne 0 ]; then
			echo "--- last log lines of the test project (failure)"
			compose "${all_profiles[@]}" logs --no-color --tail 30 2>/dev/null | tail -n 150 || true
		fi
		compose "${all_profiles[@]}" down -v --remove-orphans --timeout 30 >"$work/down.log" 2>&1 || cat "$work/down.log"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed may have left the project up.
compose "${all_profiles[@]}" down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true

# ------------------------------------------------------------------ images
say "base images"
deploy/docker/base-images.sh

version=$(git describe --always --dirty 2>/dev/null || echo dev)
build() { # TAG BUILD-ARGS...
	local tag=$1 start=$SECONDS
	shift
	if ! docker build --network host --force-rm --build-arg VERSION="$version" -t "$tag" "$@" >"$work/build.log" 2>&1; then
		if grep -q '^== go test' "$work/build.log"; then # the tester: its summary
			sed -n '/^== go test/,$p' "$work/build.log" | head -n 300
		else
			tail -n 60 "$work/build.log"
		fi
		die "building $tag failed (output above)"
	fi
	printf '   built %-28s %4ds\n' "$tag" $((SECONDS - start))
}
say "building every stage (version $version)"
for stage in builder runtime development benchmark tester; do
	build "lighthouse:$stage" -f Dockerfile.dual-fuse --target "$stage" .
done
build lighthouse-prometheus:local -f deploy/docker/prometheus.Dockerfile .
# The classic builder leaves an untagged image of each stage it passed on
# the way to a later --target: remove ours (labelled by the runtime stage).
docker image prune -f --filter label=org.opencontainers.image.source=https://github.com/lighthouse-fs/lighthouse >/dev/null
echo "   tester (go vet, go test -short without /dev/fuse):"
docker run --rm --entrypoint cat lighthouse:tester /out/test-summary.txt | sed 's/^/     /'

# ------------------------------------------------------------------ the boundary: the runtime image
say "runtime image: the bridge and nothing that serves"
expect "ENTRYPOINT" "$(docker image inspect -f '{{json .Config.Entrypoint}}' lighthouse:runtime)" '["/usr/local/bin/lighthouse","bridge"]'
expect "USER" "$(docker image inspect -f '{{.Config.User}}' lighthouse:runtime)" "1000:1000"
expect "HEALTHCHECK" "$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' lighthouse:runtime)" \
	'["CMD","/usr/local/bin/lighthouse","validate","--url","http://127.0.0.1:8765"]'
inimage() { docker run --rm --network none --user 0 --entrypoint "$1" lighthouse:runtime "${@:2}"; }
pkgs() { docker run --rm --network none --entrypoint dpkg-query "$1" -W -f '${Package}\n' | sort; }
expect "packages added to debian:bookworm-slim" \
	"$(comm -13 <(pkgs debian:bookworm-slim) <(pkgs lighthouse:runtime) | tr '\n' ' ')" "fuse3 libfuse3-3 "
expect "setuid/setgid files" "$(inimage find / -xdev -type f -perm /6000 | tr '\n' ' ')" "/usr/bin/fusermount3 "
expect "files under /usr/local" "$(inimage find /usr/local -type f | tr '\n' ' ')" "/usr/local/bin/lighthouse "
servers=$(inimage sh -c 'for p in sshd dropbear telnetd in.telnetd inetd xinetd nginx httpd apache2 lighttpd \
	busybox socat nc netcat ncat python3 perl5 node php ruby; do command -v $p; done; true' | tr '\n' ' ')
expect "server programs or interpreters that could serve (sshd, inetd, httpd, nginx, busybox, nc, socat, python3, ...)" "$servers" ""
token_in_images=$(for i in lighthouse:runtime lighthouse:development lighthouse:benchmark lighthouse:tester; do
	docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$i" | grep '^LIGHTHOUSE_ADMIN_TOKEN' | sed "s/^/$i: /" || true
done)
expect "LIGHTHOUSE_ADMIN_TOKEN set in an image" "$token_in_images" ""

# ------------------------------------------------------------------ up
say "docker compose up: bridge-primary, bridge-shadow, proxy"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { # VAR CONTRACT-PORT
	local p=$2
	if ! port_free "$p"; then
		for p in $(seq $((20000 + $2)) $((20100 + $2))); do port_free "$p" && break; done
		echo "   port $2 is taken on this machine (another lighthouse up?): publishing on 127.0.0.1:$p instead"
	fi
	export "$1=$p"
}
pick_port LIGHTHOUSE_PROXY_PORT 8764
pick_port LIGHTHOUSE_PRIMARY_PORT 8765
pick_port LIGHTHOUSE_SHADOW_PORT 8766
pick_port LIGHTHOUSE_ADMIN_PORT 9765
pick_port LIGHTHOUSE_PROMETHEUS_PORT 9090
pick_port LIGHTHOUSE_GRAFANA_PORT 3000
LIGHTHOUSE_ADMIN_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# Docker refuses a CPU limit above the machine's CPUs: 4, or fewer if so.
cpus=$(nproc)
[ "$cpus" -gt 4 ] && cpus=4
export LIGHTHOUSE_ADMIN_TOKEN LIGHTHOUSE_VERSION=$version LIGHTHOUSE_CPUS=$cpus
up=1
if ! compose up -d --no-build >"$work/up.log" 2>&1; then
	cat "$work/up.log"
	die "compose up failed"
fi
for _ in $(seq 90); do
	[ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid proxy)")" = healthy ] && break
	sleep 1
done
expect "proxy health (its bridges were healthy first: depends_on)" \
	"$(docker inspect -f '{{.State.Health.Status}}' "$(cid proxy)")" healthy
proxy=http://127.0.0.1:$LIGHTHOUSE_PROXY_PORT
admin=http://127.0.0.1:$LIGHTHOUSE_ADMIN_PORT

# ------------------------------------------------------------------ from outside
say "the proxy from outside (127.0.0.1)"
expect "GET $proxy/healthz" "$(curl -s -o /dev/null -w '%{http_code}' "$proxy/healthz")" 200
op() { curl -sS -X POST "$proxy/v1/ops" -H 'Content-Type: application/json' -d "$1"; }
op "{\"op\": \"write_file\", \"path\": \"docker-test.txt\", \"data\": \"$(printf 'through the proxy\n' | base64)\"}" >/dev/null
expect "write_file then read_file through the proxy" \
	"$(op '{"op": "read_file", "path": "docker-test.txt"}' | jq -r .data | base64 -d)" "through the proxy"
expect "admin API without the token" "$(curl -s -o /dev/null -w '%{http_code}' "$admin/admin/status")" 401
expect "admin API with the token" \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $LIGHTHOUSE_ADMIN_TOKEN" "$admin/admin/status")" 200

say "migration-test: the workload through the proxy"
compose --profile migration-test up -d --no-build migration-test >"$work/up.log" 2>&1 || {
	cat "$work/up.log"
	die "starting migration-test failed"
}
mt=$(cid migration-test)
mt_rc=$(timeout 600 docker wait "$mt" || echo timeout)
docker logs "$mt" 2>&1 | tr '\r' '\n' | lines -v -E '^\s*$|^workload: [0-9]+/[0-9]+ ops$' | tail -n 25 | sed 's/^/     /'
expect "migration-test exit status (0: PASS)" "$mt_rc" 0

metric_sum() { curl -s "$admin/metrics" | awk -v m="$1" 'index($0, m) == 1 && ($1 == m || substr($1, length(m) + 1, 1) == "{") { s += $NF; n++ } END { printf "%d %d\n", n, s }'; }
read -r n compared < <(metric_sum lighthouse_proxy_compared_total)
[ "$n" -gt 0 ] && [ "$compared" -gt 0 ] && ok "lighthouse_proxy_compared_total exported: $compared ops compared" ||
	bad "lighthouse_proxy_compared_total: $n series, sum $compared"
read -r n diverged < <(metric_sum lighthouse_fuse_backend_divergence_total)
metrics=$(curl -s "$admin/metrics")
if [[ $metrics == *"# TYPE lighthouse_fuse_backend_divergence_total counter"* ]]; then
	ok "lighthouse_fuse_backend_divergence_total exported: $n series, sum $diverged"
else
	bad "lighthouse_fuse_backend_divergence_total is not on $admin/metrics"
fi

# ------------------------------------------------------------------ inside each bridge
want_seccomp=$(jq -cS . deploy/docker/seccomp-bridge.json)
check_bridge() { # SERVICE BACKEND PORT ROLE HOST-PORT
	local svc=$1 backend=$2 port=$3 role=$4 url=http://127.0.0.1:$5 c st
	say "$svc: $backend, :$port"
	c=$(cid "$svc")
	[ -n "$c" ] || {
		bad "$svc has no container"
		return
	}
	local cmdline
	cmdline=$(docker exec "$c" cat /proc/1/cmdline | tr '\0' ' ')
	case "$cmdline" in
	"/usr/local/bin/lighthouse bridge "*) ok "PID 1 is the bridge: $cmdline" ;;
	*) bad "PID 1 is not the bridge: $cmdline" ;;
	esac
	# Every process of the container, seen from the host: the bridge, its
	# executor (the same binary), a health check (the same binary), at
	# most a short-lived fusermount3.
	local exes
	exes=$(for pid in $(docker top "$c" -eo pid | tail -n +2); do readlink "/proc/$pid/exe" 2>/dev/null || true; done |
		lines -v -x -e /usr/local/bin/lighthouse -e /usr/bin/fusermount3 | sort -u | tr '\n' ' ')
	expect "programs running other than lighthouse and fusermount3" "$exes" ""
	st=$(docker exec "$c" cat /proc/1/status)
	field() { awk -v f="$1:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' <<<"$st"; }
	expect "uid (real, effective, saved, fs)" "$(field Uid)" "1000 1000 1000 1000"
	expect "gid" "$(field Gid)" "1000 1000 1000 1000"
	expect "CapEff (effective)" "$(field CapEff)" 0000000000000000
	expect "CapPrm (permitted)" "$(field CapPrm)" 0000000000000000
	expect "CapInh + CapAmb" "$(field CapInh)$(field CapAmb)" 00000000000000000000000000000000
	expect "CapBnd (bounding: CAP_SYS_ADMIN only, bit 21)" "$(field CapBnd)" 0000000000200000
	expect "NoNewPrivs (0: the setuid fusermount3 must work)" "$(field NoNewPrivs)" 0
	expect "Seccomp (2: filter mode)" "$(field Seccomp)" 2
	# Docker's default profile allows unshare(2) to a container with
	# SYS_ADMIN; ours does not: the filter in force is ours.
	local us
	us=$(docker exec "$c" unshare -U true 2>&1 && echo "unshare -U: allowed" || true)
	case "$us" in
	*"Operation not permitted"*) ok "seccomp profile in force refuses unshare(2): $us" ;;
	*) bad "seccomp: unshare(2) was not refused: '$us'" ;;
	esac
	local hc
	hc=$(docker inspect "$c" | jq -c '.[0].HostConfig')
	expect "CapDrop" "$(jq -c .CapDrop <<<"$hc")" '["ALL"]'
	expect "CapAdd" "$(jq -c '[.CapAdd[] | ltrimstr("CAP_")]' <<<"$hc")" '["SYS_ADMIN"]'
	expect "Devices" "$(jq -c '[.Devices[] | .PathOnHost]' <<<"$hc")" '["/dev/fuse"]'
	expect "Privileged" "$(jq .Privileged <<<"$hc")" false
	expect "user" "$(docker inspect -f '{{.Config.User}}' "$c")" "1000:1000"
	expect "AppArmor unconfined" "$(jq '[.SecurityOpt[] | select(test("^apparmor[:=]unconfined$"))] | length' <<<"$hc")" 1
	expect "seccomp is deploy/docker/seccomp-bridge.json" \
		"$(jq -r '.SecurityOpt[] | select(startswith("seccomp"))' <<<"$hc" | cut -c9- | jq -cS . 2>/dev/null | cmp -s - <(echo "$want_seccomp") && echo same || echo different)" same
	expect "ReadonlyRootfs" "$(jq .ReadonlyRootfs <<<"$hc")" true
	expect "cache tmpfs" "$(jq -r '.Tmpfs["/var/cache/lighthouse"]' <<<"$hc")" "size=1g,uid=1000,gid=1000,mode=0755"
	expect "NanoCpus (limit: $LIGHTHOUSE_CPUS CPUs)" "$(jq .NanoCpus <<<"$hc")" "${LIGHTHOUSE_CPUS}000000000"
	expect "Memory (limit: 2 GiB)" "$(jq .Memory <<<"$hc")" 2147483648
	expect "MemoryReservation (1 GiB)" "$(jq .MemoryReservation <<<"$hc")" 1073741824
	local rw
	rw=$(docker exec "$c" touch /.lighthouse-rw-probe 2>&1 || true)
	case "$rw" in
	*"Read-only file system"*) ok "root filesystem refuses a write: $rw" ;;
	*) bad "root filesystem: a write did not fail as read-only: '$rw'" ;;
	esac
	local mi
	mi=$(docker exec "$c" cat /proc/1/mountinfo)
	expect "root mounted ro" "$(awk '$5 == "/" { print $6 }' <<<"$mi" | cut -d, -f1)" ro
	expect "FUSE mount on /var/cache/lighthouse/mnt" \
		"$(awk '$5 == "/var/cache/lighthouse/mnt" { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' <<<"$mi")" fuse.lighthouse
	expect "GET /readyz (a probe file written, read back, removed through the mount)" \
		"$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" 200
	expect "active backend in /v1/info" "$(curl -s "$url/v1/info" | jq -r .active_backend)" "$backend"
	expect "LIGHTHOUSE_ACTIVE_FUSE_BACKEND in the log" \
		"$(docker logs "$c" 2>&1 | lines -o 'LIGHTHOUSE_ACTIVE_FUSE_BACKEND=[a-z]*' | sort -u | tr '\n' ' ')" "LIGHTHOUSE_ACTIVE_FUSE_BACKEND=$backend "
	expect "lighthouse_fuse_backend_active gauge" \
		"$(curl -s "$url/metrics" | lines '^lighthouse_fuse_backend_active{' | tr '\n' ' ')" \
		"lighthouse_fuse_backend_active{backend=\"$backend\",role=\"$role\"} 1 "
	# Listening sockets in the container's network namespace, each with
	# the container process that holds it, read from the host. Docker's
	# embedded DNS (127.0.0.11) listens there too, held by dockerd.
	local pids pid1 owned listeners
	pids=$(docker top "$c" -eo pid | tail -n +2)
	pid1=$(docker inspect -f '{{.State.Pid}}' "$c")
	owned=$(for pid in $pids; do find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null || true; done |
		tr -dc '0-9\n' | sort -u)
	listeners=$(cat "/proc/$pid1/net/tcp" "/proc/$pid1/net/tcp6" | awk '$4 == "0A" { print $2, $10 }' |
		while read -r addr inode; do
			p=$((16#${addr##*:}))
			if grep -qx "$inode" <<<"$owned"; then
				echo "$p"
			elif [ "${addr%%:*}" != 0B00007F ]; then
				echo "$p(not held by a container process: ${addr%%:*})"
			fi
		done | sort -u | tr '\n' ' ')
	expect "listening TCP sockets in the container (held by its processes)" "$listeners" "$port "
}
check_bridge bridge-primary bazil 8765 primary "$LIGHTHOUSE_PRIMARY_PORT"
check_bridge bridge-shadow gofuse 8766 shadow "$LIGHTHOUSE_SHADOW_PORT"

say "proxy container: not a bridge, no privilege at all"
c=$(cid proxy)
expect "PID 1" "$(docker exec "$c" cat /proc/1/cmdline | tr '\0' ' ' | cut -d' ' -f1-2)" "/usr/local/bin/lighthouse proxy"
st=$(docker exec "$c" cat /proc/1/status)
expect "uid" "$(awk '$1 == "Uid:" { print $2 }' <<<"$st")" 1000
expect "CapBnd (no capability at all)" "$(awk '$1 == "CapBnd:" { print $2 }' <<<"$st")" 0000000000000000
expect "NoNewPrivs" "$(awk '$1 == "NoNewPrivs:" { print $2 }' <<<"$st")" 1
expect "Seccomp" "$(awk '$1 == "Seccomp:" { print $2 }' <<<"$st")" 2
expect "devices" "$(docker inspect "$c" | jq -c '[.[0].HostConfig.Devices[]? | .PathOnHost]')" "[]"
expect "ReadonlyRootfs" "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$c")" true

# ------------------------------------------------------------------ other profiles
say "monitoring: Prometheus with the alert rules, scraping the proxy and both bridges"
if compose --profile monitoring config -q 2>"$work/config.log"; then
	ok "the monitoring profile (Prometheus and Grafana, provisioned from deploy/grafana and dashboards/) is a valid compose file"
else
	bad "compose --profile monitoring config: $(cat "$work/config.log")"
fi
echo "   (Grafana, grafana/grafana-oss from Docker Hub, is not started: no registry here)"
compose --profile monitoring up -d --no-build --no-deps prometheus >"$work/up.log" 2>&1 || cat "$work/up.log"
prom=http://127.0.0.1:$LIGHTHOUSE_PROMETHEUS_PORT
targets=""
for _ in $(seq 60); do
	targets=$(curl -s "$prom/api/v1/targets" | jq -r '[.data.activeTargets[] | select(.health == "up") | .labels.instance] | sort | join(" ")' 2>/dev/null || true)
	[ "$targets" = "bridge-primary:8765 bridge-shadow:8766 proxy:9765" ] && break
	sleep 1
done
expect "targets up" "$targets" "bridge-primary:8765 bridge-shadow:8766 proxy:9765"
expect "alert rules loaded" "$(curl -s "$prom/api/v1/rules" | jq -r '[.data.groups[].rules[] | select(.type == "alerting")] | length > 0')" true
expect "compared ops queried from Prometheus" \
	"$(curl -s "$prom/api/v1/query" --data-urlencode 'query=sum(lighthouse_proxy_compared_total) > 0' | jq -r '.data.result | length')" 1

say "benchmark: lighthouse bench writes its JSON to a volume"
compose --profile benchmark run --rm -T --no-deps benchmark --iterations 20 --warmup 2 --rounds 2 --concurrency 1 \
	--ops create,stat --targets tmpdir,store,bazil-mount,gofuse-mount >"$work/bench.log" 2>&1 || {
	tail -n 20 "$work/bench.log"
	bad "the benchmark job failed"
}
vol=$(docker volume ls -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.volume=bench-results)
expect "bench.json in the bench-results volume has results" \
	"$(docker run --rm --network none -v "$vol:/results:ro" --entrypoint cat lighthouse:runtime /results/bench.json | jq -r '.results | length > 0' 2>/dev/null)" true

say "dev: the toolchain, and FUSE mounts as in a bridge"
if out=$(compose --profile dev run --rm -T --no-deps dev sh -c 'go version && lighthouse validate --backend gofuse' 2>&1); then
	ok "dev: $(echo "$out" | lines -v 'deploy sub-keys' | tr '\n' ';')"
else
	bad "dev: $out"
fi

# ------------------------------------------------------------------ down
say "stop and down: clean exits, nothing left"
expect "bridge FUSE mounts seen from the host before down" "$(container_fuse_mounts)" 2
merged=$(for c in $(compose "${all_profiles[@]}" ps -q 2>/dev/null); do docker inspect -f '{{.GraphDriver.Data.MergedDir}}' "$c"; done)
compose stop --timeout 30 >/dev/null 2>&1
for svc in bridge-primary bridge-shadow proxy; do
	expect "$svc exit status after SIGTERM (0: unmounted and flushed)" \
		"$(docker inspect -f '{{.State.ExitCode}}' "$(cid "$svc")")" 0
done
compose "${all_profiles[@]}" down -v --remove-orphans --timeout 30 >"$work/down.log" 2>&1 || cat "$work/down.log"
up=""
label="label=com.docker.compose.project=$project"
expect "containers left" "$(docker ps -aq --filter "$label" | wc -l)" 0
expect "volumes left" "$(docker volume ls -q --filter "$label" | wc -l)" 0
expect "networks left" "$(docker network ls -q --filter "$label" | wc -l)" 0
expect "bridge FUSE mounts left (any mount namespace)" "$(container_fuse_mounts)" 0
expect "container root filesystems still mounted" "$(for m in $merged; do lines -c " $m " /proc/mounts; done | awk '{ s += $1 } END { print s + 0 }')" 0

# ------------------------------------------------------------------ summary
say "images"
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' |
	lines -E '^(lighthouse[:-]|debian:bookworm-slim|golang:)' | sort | awk -F'\t' '{ printf "   %-30s %s\n", $1, $2 }'
if [ $failures -ne 0 ]; then
	say "docker-test: $failures check(s) FAILED"
	exit 1
fi
say "docker-test: every check passed in $((SECONDS - t0)) s"
