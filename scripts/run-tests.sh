#!/usr/bin/env bash
# Runs every test tier and prints one closing line "N passed, N failed, N skipped".
#   unit  : under ASan+UBSan (ASAN_BUILD) and in the normal build
#   host  : root, real namespaces on this kernel
#   kernel: needs IPVS and IPIP; natively when this kernel has them, otherwise the whole
#           tier runs in one micro-VM boot (labctl vm exec).
# Everything runs at once where it can, so the two cores stay busy (CI's critical path
# was the ASan build on one core, ~1100 s, while the guest's tests took ~370 s):
# - the micro-VM (one emulated CPU) runs the kernel tier in the background;
# - the ASan build runs in the background too, on every core but at nice 10, so it takes
#   only what the guest and the tests leave idle;
# - the unit and host tiers run in the foreground, then the ASan unit tier (in one process)
#   once its build is done; the kernel tier's log is printed last.
# (The host tier's namespaces live in this kernel, the guest's in its own.)
# Usage: run-tests.sh [--build-asan] BUILD [ASAN_BUILD] | run-tests.sh --kernel-only BUILD
set -uo pipefail
kernel_only=0 build_asan=0
case "${1:-}" in
  --kernel-only) kernel_only=1; shift ;;
  --build-asan) build_asan=1; shift ;;
esac
build=$1
asan=${2:-}
labctl="$build/labctl/labctl"
passed=0 failed=0 skipped=0 status=0
tmp=$(mktemp -d)
# Everything made after this marker is checked at the end: labctl runs as root on shared
# machines, so nothing it or its tests make may be writable by others (docs/security.md).
touch "$tmp/marker"
kernel_pid=""
cleanup() {
  # An interrupted run must not leave the guest behind: vm exec stops it on SIGTERM.
  [ -n "$kernel_pid" ] && kill "$kernel_pid" 2>/dev/null && wait "$kernel_pid" 2>/dev/null
  [ -n "${asan_pid:-}" ] && kill "$asan_pid" 2>/dev/null && wait "$asan_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_gtest_tier NAME BINARY: the whole tier in one GoogleTest process, counted from its
# summary. For the ASan unit tier: a process per test (as ctest runs them) costs ~0.5 s of
# sanitizer start-up each, 368 s for 544 tests; one process takes seconds. The normal unit
# tier still runs a process per test, so tests that lean on each other show there.
run_gtest_tier() {
  local name=$1 bin=$2 start=$SECONDS
  echo "=== tier: $name"
  ( cd "$(dirname "$bin")" && "$bin" --gtest_brief=1 ) 2>&1 | tee "$tmp/log"
  local rc=${PIPESTATUS[0]}
  echo "=== tier $name: $((SECONDS - start)) s"
  local total fails skips
  total=$(sed -nE 's/^\[==========\] ([0-9]+) tests? from .* ran\..*/\1/p' "$tmp/log" | tail -n1)
  fails=$(sed -nE 's/^\[  FAILED  \] ([0-9]+) tests?, listed below:.*/\1/p' "$tmp/log" | tail -n1)
  skips=$(sed -nE 's/^\[  SKIPPED \] ([0-9]+) tests?, listed below:.*/\1/p' "$tmp/log" | tail -n1)
  if [ -z "$total" ]; then
    echo "tier $name: $bin ended without a summary (exit $rc): a sanitizer report above says why"
    failed=$((failed + 1)); status=1; return
  fi
  fails=${fails:-0} skips=${skips:-0}
  passed=$((passed + total - fails - skips)); failed=$((failed + fails)); skipped=$((skipped + skips))
  [ "$rc" -eq 0 ] || status=1
}

# timed FILE COMMAND...: runs COMMAND (in the background, as a job of its own), writes its
# duration in seconds to FILE and exits with its status. A TERM or INT is passed on to the
# command's process group (setsid makes one: make and its compilers stop together; vm exec
# stops its guest).
timed() {
  local file=$1; shift
  local start=$SECONDS child
  trap 'kill -TERM -- "-$child" "$child" 2>/dev/null; wait "$child"; exit 143' TERM INT
  "$@" & child=$!
  wait "$child"; local rc=$?
  echo $((SECONDS - start)) >"$file"
  return $rc
}

# count_tier NAME LOG RC: adds a finished tier's results from its ctest log.
count_tier() {
  local name=$1 log=$2 rc=$3
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

# run_tier NAME COMMAND...: runs a ctest invocation in the foreground and counts it.
run_tier() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== tier: $name"
  "$@" 2>&1 | tee "$tmp/log"
  local rc=${PIPESTATUS[0]}
  echo "=== tier $name: $((SECONDS - start)) s"
  count_tier "$name" "$tmp/log" "$rc"
}

# The kernel tier's command, or a reason it cannot run (then the tier counts as failed).
kernel_cmd=() kernel_name="" kernel_error=""
# Ask the kernel, not the file system: on a modular kernel /proc/net/ip_vs appears only
# once ip_vs is loaded, and doctor's probes load it (in throwaway namespaces).
if [ "$(id -u)" -eq 0 ] && "$labctl" doctor --require ipvs,ipip >/dev/null 2>&1; then
  kernel_name="kernel (native)"
  kernel_cmd=(env LABCTL_KERNEL_REQUIRED=1 ctest --test-dir "$build" -L kernel --output-on-failure)
else
  kernel_name="kernel (micro-VM)"
  echo "this kernel lacks IPVS or IPIP: running the kernel tier in the micro-VM"
  # The VM boots Debian's stock kernel unless LABCTL_VM_KERNEL names another.
  if [ -z "${LABCTL_VM_KERNEL:-}" ] && ! "$(dirname "$0")/fetch-vm-kernel.sh" --quiet >/dev/null; then
    kernel_error="could not fetch the micro-VM kernel (see above)"
  else
    kernel_cmd=(env LABCTL_KERNEL_REQUIRED=1 "$labctl" vm exec --timeout "${LABCTL_VM_TIMEOUT:-1800}" --
                ctest --test-dir "$(realpath "$build")" -L kernel --output-on-failure)
  fi
fi

# In the background only in the micro-VM: a native kernel tier shares this kernel (and its
# IPVS tables) with the host tier.
background=0
[ $kernel_only -eq 0 ] && [ $build_asan -eq 1 ] && [ "$kernel_name" = "kernel (micro-VM)" ] &&
  [ -z "$kernel_error" ] && background=1
if [ $background -eq 1 ]; then
  echo "=== tier: $kernel_name started in the background; its log follows the other tiers"
  # Its own duration is kept in a file: `wait` below returns only after the other tiers.
  kernel_start=$SECONDS
  timed "$tmp/kernel.seconds" "${kernel_cmd[@]}" >"$tmp/kernel.log" 2>&1 &
  kernel_pid=$!
fi

if [ $kernel_only -eq 0 ]; then
  asan_pid=""
  if [ $build_asan -eq 1 ] && [ -n "$asan" ]; then
    echo "=== building the ASan+UBSan unit tests in the background (nice 10)"
    timed "$tmp/asan.seconds" setsid nice -n 10 make -s asan ASAN_BUILD="$asan" ASAN_JOBS="$(nproc)" \
      >"$tmp/asan.log" 2>&1 &
    asan_pid=$!
  fi
  run_tier unit ctest --test-dir "$build" -L unit --output-on-failure -j "$(nproc)"
  if [ "$(id -u)" -eq 0 ]; then
    run_tier host ctest --test-dir "$build" -L host --output-on-failure
  else
    echo "=== tier: host skipped: needs root (run make test as root or with sudo)"
  fi
  if [ -n "$asan_pid" ]; then
    wait "$asan_pid"; asan_rc=$?
    if [ $asan_rc -ne 0 ]; then
      cat "$tmp/asan.log"; echo "the ASan build failed"; failed=$((failed + 1)); status=1; asan=""
    fi
    echo "=== ASan build: $(cat "$tmp/asan.seconds" 2>/dev/null || echo '?') s"
    [ -n "$asan" ] && run_gtest_tier "unit (asan+ubsan)" "$(realpath "$asan")/tests/unit_tests"
  fi
fi

if [ -n "$kernel_error" ]; then
  echo "tier kernel: $kernel_error"; failed=$((failed + 1)); status=1
elif [ $background -eq 1 ]; then
  wait "$kernel_pid"; kernel_rc=$?; kernel_pid=""
  echo "=== tier: $kernel_name (ran in the background)"
  cat "$tmp/kernel.log"
  echo "=== tier $kernel_name: $(cat "$tmp/kernel.seconds" 2>/dev/null || echo '?') s (done $((SECONDS - kernel_start)) s after it started)"
  count_tier "$kernel_name" "$tmp/kernel.log" "$kernel_rc"
else
  run_tier "$kernel_name" "${kernel_cmd[@]}"
fi

# Sockets and links carry no meaning in their mode bits; /tmp and /var/tmp themselves are 1777.
world_writable=$(find /tmp /var/tmp /run /dev/shm -xdev -newer "$tmp/marker" -perm -0002 ! -type l ! -type s \
  ! -path /tmp ! -path /var/tmp ! -path /dev/shm ! -path '/tmp/.X11-unix*' ! -path '/tmp/.ICE-unix*' 2>/dev/null)
if [ -n "$world_writable" ]; then
  echo "=== made during the tests and writable by every user (labctl and its tests must make none):"
  echo "$world_writable" | head -20
  failed=$((failed + 1)); status=1
else
  echo "=== no file or folder made during the tests is writable by others"
fi

echo "labctl tests: $passed passed, $failed failed, $skipped skipped"
exit $status
