#!/usr/bin/env bash
# vm_lab_bench.sh: how long `labctl up --check dr-demo` takes from the host to its checks
# passing when the lab runs in a micro-VM of its own (boot, relayed up, relayed checks),
# against the baseline `labctl vm exec -- true` (a boot, nothing, a power-off) measured in
# the same run. Target (issue 13): under 15 s on this kind of machine.
#
# Usage: bench/vm_lab_bench.sh [--rounds N] [LABCTL]
#   LABCTL   the labctl binary (default: build/labctl/labctl); needs root
# Each round: baseline, then up --check --vm=always (the lab in its guest), then down.
# Medians over the rounds. The exit status is 1 only when the bench could not measure
# (the lab's checks failed), never on speed. Host state lives in a folder of its own
# (LABCTL_STATE_DIR), so it never meets another dr-demo.
set -euo pipefail

rounds=3 labctl=build/labctl/labctl
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "vm_lab_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) labctl=$1; shift ;;
  esac
done
labctl=$(realpath "$labctl")
[ -x "$labctl" ] || { echo "vm_lab_bench: no labctl at $labctl (make build first)" >&2; exit 2; }

export LABCTL_STATE_DIR
LABCTL_STATE_DIR=$(mktemp -d /tmp/vmbench.XXXXXX)
cleanup() {
  "$labctl" down dr-demo >/dev/null 2>&1 || true
  rm -rf "$LABCTL_STATE_DIR"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

base=() up=()
for ((r = 1; r <= rounds; r++)); do
  t0=$(now)
  "$labctl" vm exec -- true
  t1=$(now)
  # Inside the private state folder: root never writes to a name others can predict.
  if ! "$labctl" up --vm=always --check dr-demo >"$LABCTL_STATE_DIR/up.out" 2>&1; then
    cat "$LABCTL_STATE_DIR/up.out" >&2
    echo "vm_lab_bench: up --check dr-demo failed in the micro-VM" >&2
    exit 1
  fi
  t2=$(now)
  "$labctl" down dr-demo >/dev/null
  base+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  up+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}')")
  printf 'round %d: vm exec -- true %.1f s, up --check dr-demo (micro-VM) %.1f s\n' "$r" "${base[-1]}" "${up[-1]}"
done
b=$(printf '%s\n' "${base[@]}" | median)
u=$(printf '%s\n' "${up[@]}" | median)
printf '\nmedian of %d: baseline vm exec -- true %.1f s; up --check dr-demo through the VM %.1f s (%.2fx the baseline; target < 15 s: %s)\n' \
  "$rounds" "$b" "$u" "$(awk -v u="$u" -v b="$b" 'BEGIN {print u / b}')" \
  "$(awk -v u="$u" 'BEGIN {print (u < 15) ? "met" : "missed"}')"
