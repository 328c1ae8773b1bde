#!/usr/bin/env bash
# The main job: bring up the dr-demo lab, show its checks passing and what it looks like.
# Natively when this kernel has IPVS (the lab stays up to explore: `labctl exec dr-demo
# client`); otherwise inside the micro-VM, where the lab lives and dies with the guest.
# Usage: demo.sh LABCTL
set -euo pipefail
labctl=$(realpath "$1")
cd "$(dirname "$0")/.."

if "$labctl" doctor --require ipvs >/dev/null 2>&1; then
  "$labctl" up --replace --check dr-demo
  echo
  echo "The lab stays up. Try:  $labctl exec dr-demo client -- curl -s http://10.10.0.100/"
  echo "Remove it with:          $labctl down dr-demo"
  exit 0
fi

echo "This kernel has no IPVS: running the demo in the micro-VM (Debian's kernel, ~10 s)."
if [ -z "${LABCTL_VM_KERNEL:-}" ]; then scripts/fetch-vm-kernel.sh --quiet >/dev/null; fi
"$labctl" vm exec --timeout 300 -- sh -c '
  labctl=$1
  "$labctl" up --check dr-demo
  rc=$?
  echo
  "$labctl" status dr-demo
  "$labctl" down dr-demo
  exit $rc' sh "$labctl"
