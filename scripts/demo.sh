#!/usr/bin/env bash
# The main job: bring up the dr-demo lab, show its checks passing and how to explore it.
# Natively when this kernel has IPVS; otherwise `labctl up` runs it in a micro-VM of its
# own (docs/vm.md), which every labctl command reaches. Either way the lab stays up until
# `labctl down dr-demo`.
# Usage: demo.sh LABCTL
set -euo pipefail
labctl=$(realpath "$1")
cd "$(dirname "$0")/.."

if ! "$labctl" doctor --require ipvs >/dev/null 2>&1 && [ -z "${LABCTL_VM_KERNEL:-}" ]; then
  echo "This kernel has no IPVS: dr-demo will run in a micro-VM (Debian's kernel, ~10 s to boot)."
  scripts/fetch-vm-kernel.sh --quiet >/dev/null
fi
"$labctl" up --replace --check dr-demo
echo
echo "The lab stays up. Try:  $labctl exec dr-demo client -- curl -s http://10.10.0.100/"
echo "                        $labctl status dr-demo"
echo "Remove it with:          $labctl down dr-demo"
