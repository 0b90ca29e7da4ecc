#!/usr/bin/env bash
# Runs pytest where only loopback exists (a fresh network namespace) when this user may create one,
# so that no WebRTC test can reach any other address; otherwise on the host with loopback-only ICE.
set -euo pipefail
cd "$(dirname "$0")/.."
pytest=(.venv/bin/python -m pytest "$@")
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
  echo "running tests in a loopback-only network namespace"
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${pytest[@]}"
fi
echo "warning: cannot create a network namespace; running on the host with loopback-only ICE"
exec "${pytest[@]}"
