#!/usr/bin/env bash
# Fuzz the tar -> EROFS writer with libFuzzer (clang), checking every image
# it accepts with our own reader (tests/fuzz/fuzz_convert.c).
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 600)
# New inputs go to fuzz-out/corpus; crashes to fuzz-out/. Copy a crash
# reproducer into tests/fuzz/corpus/ once fixed: tests/run replays that
# folder in every build (not fuzzed).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
out=fuzz-out
mkdir -p "$out/corpus"

command -v clang >/dev/null || apt-get install -y -qq clang >/dev/null
flags="-g -O1 -std=c11 -D_GNU_SOURCE -I. -Iinclude"
flags="$flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
clang $flags -o "$out/fuzz_convert" tests/fuzz/fuzz_convert.c \
	common/*.c convert/*.c \
	$(pkg-config --cflags --libs libarchive libcrypto libisal libzstd) \
	-lpthread

# -rss_limit_mb: the writer's metadata for a hostile tar stays well below.
exec "$out/fuzz_convert" -max_total_time="$secs" -rss_limit_mb=2048 \
	-max_len=262144 -timeout=30 -artifact_prefix="$out/" \
	"$out/corpus" tests/fuzz/corpus
