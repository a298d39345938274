#!/usr/bin/env bash
# Benchmark: one layer tar.gz -> EROFS.
#
# Measures, in one run on the same input:
#   floor  igzip -dc LAYER > /dev/null     (inflating alone; nothing is faster)
#   ours   ocicache convert LAYER OUT.erofs
#   peer   tar -xzf LAYER -C DIR && mkfs.erofs OUT DIR   (Debian's tools)
# and prints wall times, peak memory (maximum resident set) and ratios.
#
# Usage: bench/convert.sh [BUILD_DIR]   (default: build)
# The input (about 1.2 GiB of files from /usr, over 20,000 entries) is made
# once under bench/out/ and reused.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
ocicache=$build/cli/ocicache
out=$top/bench/out
mkdir -p "$out"

[ -x "$ocicache" ] || { echo "bench: $ocicache not built" >&2; exit 1; }
for tool in igzip mkfs.erofs /usr/bin/time; do
	command -v "$tool" >/dev/null || {
		echo "bench: $tool missing (scripts/install-deps.sh)" >&2
		exit 1
	}
done

layer=$out/usr-layer.tar.gz
if [ ! -s "$layer" ]; then
	echo "bench: making $layer from /usr (once)" >&2
	# Whole directories in name order until 1.2 GiB of file data.
	list=$out/usr-files.txt
	find /usr -xdev \( -type f -o -type l -o -type d \) -printf '%s %p\n' |
		sort -k2 | awk '{ total += $1; print $2; if (total > 1288490188) exit }' \
		>"$list"
	tar --no-recursion --numeric-owner -cf - -T "$list" 2>/dev/null |
		gzip -6 >"$layer.tmp"
	mv "$layer.tmp" "$layer"
fi

uncompressed=$(igzip -dc "$layer" | wc -c)
entries=$(tar -tzf "$layer" | wc -l)
echo "input: $layer: $(stat -c %s "$layer") bytes gzip, $uncompressed bytes tar, $entries entries"

# measure NAME COMMAND...: wall seconds and peak RSS in KiB into globals.
measure() {
	local name=$1
	shift
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cat "$layer" >/dev/null # the input is read from the page cache by all
	local start end
	start=$(date +%s.%N)
	/usr/bin/time -f '%M' -o "$out/$name.rss" "$@"
	end=$(date +%s.%N)
	secs=$(echo "$end - $start" | bc -l)
	rss=$(tail -n 1 "$out/$name.rss")
	printf '%-6s %8.2f s  %8.1f MiB/s  peak RSS %7.1f MiB\n' "$name" \
		"$secs" "$(echo "$uncompressed / $secs / 1048576" | bc -l)" \
		"$(echo "$rss / 1024" | bc -l)"
}

measure floor sh -c "igzip -dc '$layer' >/dev/null"
floor=$secs

rm -f "$out/ours.erofs"
measure ours "$ocicache" convert "$layer" "$out/ours.erofs" >/dev/null
ours=$secs
ours_rss=$rss

peer_dir=$out/peer-tree
rm -rf "$peer_dir" "$out/peer.erofs"
mkdir -p "$peer_dir"
measure peer sh -c "tar --numeric-owner -xzf '$layer' -C '$peer_dir' && mkfs.erofs --quiet '$out/peer.erofs' '$peer_dir'"
peer=$secs
rm -rf "$peer_dir"

budget_kib=$(( 65536 + entries * 200 / 1024 ))
echo
printf 'ours / floor: %.2fx (target <= 1.30x)\n' "$(echo "$ours / $floor" | bc -l)"
printf 'peer / ours:  %.2fx (target >= 5x)\n' "$(echo "$peer / $ours" | bc -l)"
printf 'ours peak RSS: %d KiB, budget 64 MiB + 200 B x %d entries = %d KiB\n' \
	"$ours_rss" "$entries" "$budget_kib"
