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

# run NAME COMMAND...: prints wall seconds and peak RSS.
run() {
	local name=$1 start end
	shift
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	start=$(date +%s.%N)
	/usr/bin/time -f '%M' -o "$work/$name.rss" "$@"
	end=$(date +%s.%N)
	secs=$(echo "$end - $start" | bc -l)
	printf '%-12s %8.3f s  peak RSS %7.1f MiB\n' "$name" "$secs" \
		"$(echo "$(tail -n 1 "$work/$name.rss") / 1024" | bc -l)"
}

run ours "$ocicache" --root "$work/cache" -q pull --plain-http "$ref" >/dev/null
ours=$secs
run warm-pull "$ocicache" --root "$work/cache" -q pull --plain-http "$ref" >/dev/null
run inspect "$ocicache" --root "$work/cache" inspect --json "$ref" >/dev/null

mkdir -p "$work/peer-tree"
run peer sh -c "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/peer-oci:x &&
	blob=\$(ls -S $work/peer-oci/blobs/sha256/* | head -n 1) &&
	tar --numeric-owner -xzf \"\$blob\" -C $work/peer-tree &&
	mkfs.erofs --quiet $work/peer.erofs $work/peer-tree"
peer=$secs

echo
printf 'peer / ours: %.2fx (cold pull to an EROFS root)\n' \
	"$(echo "$peer / $ours" | bc -l)"
