#!/usr/bin/env bash
# Regenerates docs/images/<demo>.{dot,svg} from the built-in demos with the built labctl.
# tests/unit/graph_test.cc fails when the committed .dot no longer matches render_dot.
# Usage: scripts/render-docs.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
labctl="${1:-build}/labctl/labctl"
for demo in nat-demo dr-demo tun-demo nat-vs-dr; do
  "$labctl" graph "$demo" > "docs/images/$demo.dot"
  dot -Tsvg "docs/images/$demo.dot" > "docs/images/$demo.svg"
done
