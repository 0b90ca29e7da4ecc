#!/usr/bin/env bash
# Installs the Debian packages the server (base) or the tests (test) need, when they are missing.
set -euo pipefail
want=()
need() { dpkg -s "$1" >/dev/null 2>&1 || want+=("$1"); }
need python3-venv
need python3-dev  # with gcc: builds media/_sender.c, the forwarding path's last step (setup.py)
need gcc
need openssl
if [ "${1:-base}" = test ]; then
  need chromium
  need iproute2
  need util-linux
  need nftables
  need coturn
  need ethtool
  need poppler-utils  # pdfsig: a second validator of signed court acts
  need janus  # the benchmark's side-by-side SFU (its smoke test runs in the suite)
  # gcc (base) also builds the small loopback shim that lets Janus gather 127.0.0.1
fi
[ ${#want[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${want[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${want[@]}"
# coturn and janus are started by the tests as processes with their own config, never as packaged services.
for service in coturn janus; do
  if [[ " ${want[*]} " == *" $service "* ]]; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
    $sudo service "$service" stop >/dev/null 2>&1 || true
  fi
done
