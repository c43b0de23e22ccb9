#!/usr/bin/env bash
# Installs dependencies, builds align, and runs the main job: `align demo`, the built-in
# end-to-end alignment of a support assistant (docs/demo.md).  It needs nothing but this
# checkout.  Idempotent: a second run rebuilds only what changed, and the demo skips the
# stages it finished (its run directory is build/align-demo, which git ignores).  Extra
# arguments go to `align demo`: --from-scratch to start over, --quick for the short run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
build/align demo --out build/align-demo "$@"
