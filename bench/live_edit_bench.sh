#!/usr/bin/env bash
# live_edit_bench.sh: what a live edit costs end to end, as a user types it: `labctl link
# LAB NODE:IF impair rate=10mbit`, `... clear`, `... down`, `... up`, each a whole labctl
# process (start, load the lab, take its lock, edit over rtnetlink, record the edit in the
# lab's state). Baselines, in the same run: `labctl --version` (starting the process: the
# dynamic loader and its libraries) and `labctl status LAB`, a process that loads the same
# lab and reads it back from the kernel without changing anything. Goal (issue 23): a live
# edit at most 10 ms.
#
# Usage: bench/live_edit_bench.sh [--rounds N] [LABCTL]   (root; default 15 rounds)
# The lab is tests/data/host/routed.toml (no IPVS, no netem: the host kernel has tbf) under
# the name bench-live-PID; it is removed at the end, also on failure. Medians over the
# rounds; each round runs every command once, alternating, so slow and fast moments hit
# all of them. Never a pass/fail on speed: exit 1 only when a command failed.
set -euo pipefail

rounds=15 labctl=build/labctl/labctl
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "live_edit_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) labctl=$1; shift ;;
  esac
done
labctl=$(realpath "$labctl")
[ -x "$labctl" ] || { echo "live_edit_bench: no labctl at $labctl (make build first)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "live_edit_bench: needs root (it brings a lab up)" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
lab=bench-live-$$
dir=$(mktemp -d)
file=$dir/$lab.toml
sed "s/^name = \"routed\"/name = \"$lab\"/" "$here/tests/data/host/routed.toml" >"$file"
trap '"$labctl" down "$lab" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$labctl" up "$file" >/dev/null

# timed ARGS...: runs labctl ARGS, prints its milliseconds; fails the bench if it fails.
timed() {
  local t0 t1
  t0=$(date +%s%N)
  if ! "$labctl" "$@" >"$dir/out" 2>&1; then
    echo "live_edit_bench: labctl $* failed:" >&2
    cat "$dir/out" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

names=("status (baseline)" "--version (process start)" "link impair rate=10mbit" "link impair (replace)" "link clear" "link down" "link up")
cmds=("status $lab" "--version" "link $lab client:eth0 impair rate=10mbit" "link $lab client:eth0 impair rate=20mbit"
      "link $lab client:eth0 clear" "link $lab client:eth0 down" "link $lab client:eth0 up")
timed status "$lab" >/dev/null  # warm the page cache
declare -A times
for ((r = 1; r <= rounds; r++)); do
  for i in "${!cmds[@]}"; do
    # shellcheck disable=SC2086 # the command's words, all ours
    times[$i]+="$(timed ${cmds[$i]}) "
  done
done

base=$(echo "${times[0]}" | tr ' ' '\n' | grep . | median)
start=$(echo "${times[1]}" | tr ' ' '\n' | grep . | median)
echo "labctl live edits on a running lab, median of $rounds rounds ($(uname -r), $(nproc) cores):"
for i in "${!cmds[@]}"; do
  m=$(echo "${times[$i]}" | tr ' ' '\n' | grep . | median)
  if [ "$i" -le 1 ]; then
    printf '  %-28s %7.2f ms\n' "${names[$i]}" "$m"
  else
    goal=$(awk -v m="$m" 'BEGIN { print (m <= 10 ? "met" : "NOT met") }')
    printf '  %-28s %7.2f ms  %5.2fx status  %6.2f ms beyond process start  (goal <= 10 ms: %s)\n' \
      "${names[$i]}" "$m" "$(awk -v m="$m" -v b="$base" 'BEGIN { printf "%.2f", m / b }')" \
      "$(awk -v m="$m" -v s="$start" 'BEGIN { printf "%.2f", m - s }')" "$goal"
  fi
done
