#!/usr/bin/env bash
# Tears down the lab "dr-demo": stops its agents, then deletes its
# namespaces, which takes every interface, address, route, sysctl and IPVS service
# inside them along. Keeps going when a command fails and exits 1 if any did.
set -uo pipefail
status=0
kill "$(cat /run/labctl-script/dr-demo/rs2/web.pid)" && rm -f /run/labctl-script/dr-demo/rs2/web.pid || status=1
kill "$(cat /run/labctl-script/dr-demo/rs1/web.pid)" && rm -f /run/labctl-script/dr-demo/rs1/web.pid || status=1
ip netns del dr-demo-lan || status=1
ip netns del dr-demo-rs2 || status=1
ip netns del dr-demo-rs1 || status=1
ip netns del dr-demo-director || status=1
ip netns del dr-demo-client || status=1
rm -rf /run/labctl-script/dr-demo
exit $status
