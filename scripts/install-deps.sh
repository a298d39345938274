#!/usr/bin/env bash
# Install what building and testing ocicache needs on Debian 12, as root.
# Idempotent: runs apt-get update (once) and install only when a package is
# missing, so a second run does no network access.
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config clang
	libcurl4-openssl-dev libarchive-dev libjansson-dev libssl-dev
	libsqlite3-dev libisal-dev libzstd-dev
	# test rig: registry, image tools, readers we did not write
	docker-registry umoci skopeo erofs-utils qemu-utils apache2-utils
	python3 attr libcap2-bin zstd openssl util-linux ca-certificates
	curl
	# benchmarks and the real-world tar fixture
	isal bc time xz-utils binutils acl
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root to install them" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
