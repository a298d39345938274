#!/usr/bin/env bash
# Benchmark: one layer tar.gz -> EROFS.
#
# Measures, in one run on the same input:
#   floor  igzip -dc LAYER > /dev/null     (inflating alone; nothing is faster)
#   write  igzip -dc LAYER > FILE          (inflating and writing as many bytes)
#   ours   ocicache convert LAYER OUT.erofs
#   peer   tar -xzf LAYER -C DIR && mkfs.erofs OUT DIR   (Debian's tools)
# and prints wall times (best of three), peak memory (maximum resident set)
# and ratios; once with outputs on the disk (bench/out) and once on tmpfs.
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
	# Entries in name order until both 1.2 GiB of data and 25,000
	# entries; files over 16 MiB are left out so that the mix looks like
	# a real root filesystem rather than a few large blobs.
	list=$out/usr-files.txt
	find /usr -xdev \( -type f -o -type l -o -type d \) -printf '%s %p\n' |
		sort -k2 | awk '$1 <= 16777216 { total += $1; n++;
			print substr($0, index($0, " ") + 1);
			if (total > 1288490188 && n > 25000) exit }' >"$list" ||
		true # awk leaving early breaks the pipe of find and sort
	# tar exits 1 when a file changed while read: still a good input.
	{ tar --no-recursion --numeric-owner -cf - -T "$list" 2>/dev/null ||
		[ $? -eq 1 ]; } | gzip -6 >"$layer.tmp"
	mv "$layer.tmp" "$layer"
fi

uncompressed=$(igzip -dc "$layer" | wc -c)
entries=$(tar -tzf "$layer" | wc -l)
echo "input: $layer: $(stat -c %s "$layer") bytes gzip, $uncompressed bytes tar, $entries entries"

exec 3>&1
# measure NAME COMMAND...: the best wall time of three runs (this kind of
# virtual machine pays for fresh page-cache pages unevenly, so one run
# says little) and the peak RSS of that run, into globals and a line.
measure() {
	local name=$1 start end t i
	shift
	secs=
	for i in 1 2 3; do
		start=$(date +%s.%N)
		/usr/bin/time -f '%M' -o "$out/$name.rss.$i" "$@"
		end=$(date +%s.%N)
		t=$(echo "$end - $start" | bc -l)
		if [ -z "$secs" ] || [ "$(echo "$t < $secs" | bc -l)" = 1 ]; then
			secs=$t
			rss=$(tail -n 1 "$out/$name.rss.$i")
		fi
	done
	rm -f "$out/$name".rss.*
	printf '%-6s %8.2f s  %8.1f MiB/s  peak RSS %7.1f MiB\n' "$name" >&3 \
		"$secs" "$(echo "$uncompressed / $secs / 1048576" | bc -l)" \
		"$(echo "$rss / 1024" | bc -l)"
}

# run_set WHERE: every measurement with outputs in WHERE.
run_set() {
	local where=$1
	echo
	echo "outputs in $where ($(df -T "$where" | awk 'NR == 2 { print $2 }'))"

	measure floor sh -c "igzip -dc '$layer' >/dev/null"
	floor=$secs
	measure write sh -c "igzip -dc '$layer' >'$where/inflated.tar'"
	write=$secs
	rm -f "$where/inflated.tar"

	rm -f "$where/ours.erofs"
	measure ours "$ocicache" convert "$layer" "$where/ours.erofs" >/dev/null
	ours=$secs
	ours_rss=$rss
	rm -f "$where/ours.erofs"

	local peer_dir=$where/peer-tree
	rm -rf "$peer_dir" "$where/peer.erofs"
	mkdir -p "$peer_dir"
	measure peer sh -c "rm -rf '$peer_dir' '$where/peer.erofs' &&
		mkdir '$peer_dir' &&
		tar --numeric-owner -xzf '$layer' -C '$peer_dir' &&
		mkfs.erofs --quiet '$where/peer.erofs' '$peer_dir'"
	peer=$secs
	rm -rf "$peer_dir" "$where/peer.erofs"

	printf 'ours / floor:     %.2fx (target <= 1.30x)\n' \
		"$(echo "$ours / $floor" | bc -l)"
	printf 'ours / inflate+write: %.2fx (the same bytes written to %s)\n' \
		"$(echo "$ours / $write" | bc -l)" "$where"
	printf 'peer / ours:      %.2fx (target >= 5x)\n' \
		"$(echo "$peer / $ours" | bc -l)"
	printf 'ours peak RSS: %d KiB, budget 64 MiB + 200 B x %d entries = %d KiB\n' \
		"$ours_rss" "$entries" "$budget_kib"
}

budget_kib=$((65536 + entries * 200 / 1024))
echo "floor: igzip -dc to /dev/null; write: igzip -dc to a file beside ours"
run_set "$out"
# The same on tmpfs, where writing costs memory bandwidth rather than a
# file system: it shows the converter's own cost.
if [ -d /dev/shm ] && [ "$(df --output=avail -k /dev/shm | tail -n 1)" -gt \
	$((uncompressed * 3 / 1024)) ]; then
	shm=$(mktemp -d /dev/shm/ocicache-bench.XXXXXX)
	run_set "$shm"
	rm -rf "$shm"
fi
