#!/usr/bin/env bash
# Runs every test tier and prints one closing line "N passed, N failed, N skipped".
#   unit  : under ASan+UBSan (ASAN_BUILD) and in the normal build
#   host  : root, real namespaces on this kernel
#   kernel: needs IPVS and IPIP; natively when this kernel has them, otherwise the whole
#           tier runs in one micro-VM boot (labctl vm exec).
# Usage: run-tests.sh BUILD [ASAN_BUILD] | run-tests.sh --kernel-only BUILD
set -uo pipefail
kernel_only=0
if [ "${1:-}" = "--kernel-only" ]; then kernel_only=1; shift; fi
build=$1
asan=${2:-}
labctl="$build/labctl/labctl"
passed=0 failed=0 skipped=0 status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_tier NAME COMMAND...: runs a ctest invocation and adds up its results.
run_tier() {
  local name=$1; shift
  echo "=== tier: $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local total fails skips
  total=$(sed -nE 's/.* tests failed out of ([0-9]+).*/\1/p' "$log" | tail -n1)
  fails=$(sed -nE 's/.*tests passed, ([0-9]+) tests failed out of.*/\1/p' "$log" | tail -n1)
  skips=$(grep -cE '\*\*\*Skipped|Not Run \(Skipped\)' "$log" || true)
  if [ -z "$total" ]; then
    if grep -q "No tests were found" "$log"; then total=0; fails=0
    else echo "tier $name: ctest did not report a summary (exit $rc)"; failed=$((failed + 1)); status=1; return; fi
  fi
  passed=$((passed + total - fails - skips)); failed=$((failed + fails)); skipped=$((skipped + skips))
  [ "$rc" -eq 0 ] || status=1
}

if [ $kernel_only -eq 0 ]; then
  [ -n "$asan" ] && run_tier "unit (asan+ubsan)" ctest --test-dir "$asan" -L unit --output-on-failure
  run_tier unit ctest --test-dir "$build" -L unit --output-on-failure
  if [ "$(id -u)" -eq 0 ]; then
    run_tier host ctest --test-dir "$build" -L host --output-on-failure
  else
    echo "=== tier: host skipped: needs root (run make test as root or with sudo)"
  fi
fi

# Ask the kernel, not the file system: on a modular kernel /proc/net/ip_vs appears only
# once ip_vs is loaded, and doctor's probes load it (in throwaway namespaces).
if [ "$(id -u)" -eq 0 ] && "$labctl" doctor --require ipvs,ipip >/dev/null 2>&1; then
  run_tier "kernel (native)" env LABCTL_KERNEL_REQUIRED=1 ctest --test-dir "$build" -L kernel --output-on-failure
else
  echo "this kernel lacks IPVS or IPIP: running the kernel tier in the micro-VM"
  # The VM boots Debian's stock kernel unless LABCTL_VM_KERNEL names another.
  if [ -z "${LABCTL_VM_KERNEL:-}" ] && ! "$(dirname "$0")/fetch-vm-kernel.sh" --quiet >/dev/null; then
    echo "tier kernel: could not fetch the micro-VM kernel (see above)"; failed=$((failed + 1)); status=1
  else
    run_tier "kernel (micro-VM)" env LABCTL_KERNEL_REQUIRED=1 "$labctl" vm exec --timeout "${LABCTL_VM_TIMEOUT:-1800}" -- \
      ctest --test-dir "$(realpath "$build")" -L kernel --output-on-failure
  fi
fi

echo "labctl tests: $passed passed, $failed failed, $skipped skipped"
exit $status
