#!/usr/bin/env bash
# Benchmark: a cold pull of one large image from a local registry, ocicache
# against the peer pipeline, measured in the same run.
#
#   ours   ocicache pull (download, verify, convert, fsmeta, VMDK, record)
#   peer   skopeo copy docker://REF oci:DIR  then  tar -xzf of the layer
#          into a directory  then  mkfs.erofs of that directory
#   warm   ocicache pull again (asks the registry, converts nothing) and
#          ocicache inspect (SQLite and a stat)
#
# Usage: bench/pull.sh [BUILD_DIR]   (default: build)
# The image is the layer bench/convert.sh makes (about 1.2 GiB of /usr),
# put in an OCI layout by bench/make-layout.py and pushed once per run to
# a registry started on a free loopback port.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
ocicache=$build/cli/ocicache
out=$top/bench/out
layer=$out/usr-layer.tar.gz
[ -x "$ocicache" ] || { echo "bench: $ocicache not built" >&2; exit 1; }
if [ ! -s "$layer" ]; then
	echo "bench: $layer missing: run bench/convert.sh first" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ocicache-bench.XXXXXX")
registry_pid=
cleanup() {
	[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
	sleep 0.1
done

/usr/bin/python3 "$top/bench/make-layout.py" "$layer" "$work/layout" bench
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:bench" \
	"docker://127.0.0.1:$port/bench/usr:latest"
ref=127.0.0.1:$port/bench/usr:latest

# run NAME COMMAND...: the best wall time of three runs (see
# bench/convert.sh on why) and that run's peak RSS. $work/cache-N and
# $work/peer-N are fresh for run N.
exec 3>&1
run() {
	local name=$1 start end t i cmd
	shift
	secs=
	for i in 1 2 3; do
		rm -rf "$work/cache-$i" "$work/peer-$i"
		mkdir -p "$work/peer-$i/tree"
		cmd=$(printf '%s ' "$@" | sed "s|@N@|$i|g")
		start=$(date +%s.%N)
		/usr/bin/time -f '%M' -o "$work/$name.rss" sh -c "$cmd" >/dev/null
		end=$(date +%s.%N)
		t=$(echo "$end - $start" | bc -l)
		if [ -z "$secs" ] || [ "$(echo "$t < $secs" | bc -l)" = 1 ]; then
			secs=$t
			rss=$(tail -n 1 "$work/$name.rss")
		fi
	done
	printf '%-10s %8.3f s  peak RSS %7.1f MiB\n' "$name" "$secs" \
		"$(echo "$rss / 1024" | bc -l)" >&3
}

run ours "$ocicache" --root "$work/cache-@N@" -q pull --plain-http "$ref"
ours=$secs
# Warm: the cache of the last cold run, which run() leaves in place.
"$ocicache" --root "$work/cache-warm" -q pull --plain-http "$ref" >/dev/null
warm_run() {
	local name=$1
	shift
	local start end
	start=$(date +%s.%N)
	"$@" >/dev/null
	end=$(date +%s.%N)
	printf '%-10s %8.3f s\n' "$name" "$(echo "$end - $start" | bc -l)"
}
warm_run warm-pull "$ocicache" --root "$work/cache-warm" -q pull \
	--plain-http "$ref"
warm_run inspect "$ocicache" --root "$work/cache-warm" inspect --json "$ref"

run peer "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/peer-@N@/oci:x &&
	tar --numeric-owner -xzf \$(ls -S $work/peer-@N@/oci/blobs/sha256/* | head -n 1) -C $work/peer-@N@/tree &&
	mkfs.erofs --quiet $work/peer-@N@/out.erofs $work/peer-@N@/tree"
peer=$secs

echo
printf 'peer / ours: %.2fx (cold pull to an EROFS root; best of three)\n' \
	"$(echo "$peer / $ours" | bc -l)"
