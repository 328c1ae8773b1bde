#!/usr/bin/env bash
# check_bench.sh: how long `labctl check` takes on a passing dr-demo and on a fully broken
# one (the VIP removed from the director after up: no node answers ARP for it, so every
# probe through the VIP goes unanswered), and the ratio broken/passing, both measured in
# the same run. Targets (issue 11): broken < 10 s, passing < 3 s, in the guest kernel.
#
# Usage: bench/check_bench.sh [--rounds N] [--here] [LABCTL]
#   LABCTL   the labctl binary (default: build/labctl/labctl)
#   --here   run on this kernel (it must have IPVS). Without it the bench runs here when
#            this kernel has IPVS, else in the micro-VM (`labctl vm exec`), whose fresh
#            /run means a dr-demo of its own.
# Every round runs a passing check, removes the VIP, runs the broken check and puts the VIP
# back, so slow and fast minutes hit both. Medians over the rounds, after one check that
# warms up (shown apart); each check's own time from `--json` when jq is installed. Never a
# pass/fail on speed: the exit status is 1 only when the bench could not measure (the
# passing lab failed, the broken one passed).
set -euo pipefail

rounds=3 here=0 labctl=build/labctl/labctl
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --here) here=1; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "check_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) labctl=$1; shift ;;
  esac
done
labctl=$(realpath "$labctl")
[ -x "$labctl" ] || { echo "check_bench: no labctl at $labctl (make build first)" >&2; exit 2; }

# Ask the kernel, not the file system (as scripts/run-tests.sh does).
if [ $here -eq 0 ] && "$labctl" doctor --require ipvs >/dev/null 2>&1; then here=1; fi
if [ $here -eq 0 ]; then
  # The VM boots Debian's stock kernel unless LABCTL_VM_KERNEL names another.
  if [ -z "${LABCTL_VM_KERNEL:-}" ]; then
    "$(dirname "$0")/../scripts/fetch-vm-kernel.sh" --quiet >/dev/null ||
      { echo "check_bench: could not fetch the micro-VM kernel (scripts/fetch-vm-kernel.sh)" >&2; exit 1; }
  fi
  echo "check_bench: running in the micro-VM (1 vCPU, software emulation)"
  exec "$labctl" vm exec --timeout "${LABCTL_VM_TIMEOUT:-1800}" -- \
    bash "$(realpath "$0")" --here --rounds "$rounds" "$labctl"
fi

lab=dr-demo
director=$lab-director
vip=10.10.0.100/32
out=$(mktemp)
trap '"$labctl" down "$lab" >/dev/null 2>&1 || true; rm -f "$out"' EXIT

if "$labctl" ls 2>/dev/null | grep -qw "$lab"; then
  echo "check_bench: a lab named $lab is already up here; run without --here (in the VM)" >&2
  exit 2
fi
"$labctl" up "$lab" >/dev/null

now() { date +%s.%N; }
# timed_check EXPECTED_STATUS: runs `labctl check`, prints its seconds; fails the bench if
# the exit status is not the expected one (then the lab is not what we think it is).
timed_check() {
  local want=$1 t0 t1 rc=0
  t0=$(now)
  "$labctl" check --json "$lab" >"$out" 2>/dev/null || rc=$?
  t1=$(now)
  if [ "$rc" -ne "$want" ]; then
    echo "check_bench: labctl check exited $rc, expected $want:" >&2
    cat "$out" >&2
    exit 1
  fi
  echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }'
}
# Each check's own seconds, from --json (skipped without jq).
per_check() {
  command -v jq >/dev/null || return 0
  jq -r '[.checks[]? | "\(.name) \(.ms / 1000 * 100 | round / 100)s\(if .passed then "" else " FAIL" end)"] | join(", ")' \
    "$out" 2>/dev/null | sed 's/^/      /' || true
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The first check after up reads labctl's pages in (over 9p in the VM) and meets the lab's
# first ARP resolutions: shown, but kept out of the medians.
t=$(timed_check 0)
echo "  first check after up (not in the medians)   ${t} s"
per_check

pass_times=() broken_times=()
for ((i = 1; i <= rounds; i++)); do
  t=$(timed_check 0)
  pass_times+=("$t")
  echo "  round $i  passing dr-demo   ${t} s"
  per_check
  ip -n "$director" addr del "$vip" dev eth0
  t=$(timed_check 1)
  broken_times+=("$t")
  echo "  round $i  broken dr-demo    ${t} s (VIP removed from the director)"
  per_check
  ip -n "$director" addr add "$vip" dev eth0
done

p=$(printf '%s\n' "${pass_times[@]}" | median)
b=$(printf '%s\n' "${broken_times[@]}" | median)
echo "labctl check, median of $rounds (alternating; $(uname -r)):"
echo "  passing dr-demo  $p s   (target < 3 s)"
echo "  broken dr-demo   $b s   (target < 10 s)"
echo "  ratio            $(awk -v b="$b" -v p="$p" 'BEGIN { printf "%.1f", b / p }')x (broken / passing)"
