#!/usr/bin/env bash
# ocicache end to end on one machine: install what is missing, build, make
# the fixture images, start a local registry, push an image, pull it into a
# fresh cache and show what the cache holds. Run as root on Debian 12.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/install-deps.sh

echo "== building (build/)"
if [ ! -f build/meson-private/coredata.dat ]; then
	meson setup build -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build >/dev/null
OCICACHE="$ROOT/build/cli/ocicache"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ocicache-demo.XXXXXX")
REGPID=
cleanup() {
	if [ -n "$REGPID" ]; then
		kill "$REGPID" 2>/dev/null || true
		wait "$REGPID" 2>/dev/null || true
	fi
	rm -rf "$WORK/registry" "$WORK/fixtures"
}
trap cleanup EXIT

echo "== building fixture images"
fixtures/build-images.sh "$WORK/fixtures" 2>/dev/null

PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/registry/storage"
cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  secret: ocicache-demo
EOF
echo "== starting a registry on 127.0.0.1:$PORT"
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
REGPID=$!
for _ in $(seq 1 100); do
	if curl -fs -o /dev/null "http://127.0.0.1:$PORT/v2/" 2>/dev/null; then
		break
	fi
	sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/"

REF="127.0.0.1:$PORT/demo/two:latest"
echo "== pushing $REF"
REGISTRY_AUTH_FILE="$WORK/auth.json" skopeo copy -q --dest-tls-verify=false \
	--dest-no-creds "oci:$WORK/fixtures/two:latest" "docker://$REF"

CACHE="$WORK/cache"
echo "== ocicache --root $CACHE pull --plain-http $REF"
"$OCICACHE" --root "$CACHE" pull --plain-http "$REF"
echo "== ocicache --root $CACHE images"
"$OCICACHE" --root "$CACHE" images
echo "== ocicache --root $CACHE inspect $REF"
"$OCICACHE" --root "$CACHE" inspect "$REF"

echo
echo "The cache is in $CACHE (remove it with: rm -rf $WORK)"
