#!/usr/bin/env bash
# Installs the system tools the end-to-end tests need, then brings the Docker engine up.
# Idempotent, and quick when everything is already there (CI calls it before every pytest run).
#
#   scripts/install-test-deps.sh
#
#   - Docker engine, docker-compose (v1) and a local `python:3.11-slim` base image, through
#     ../shared/tools/docker-engine (container registries are unreachable from these machines);
#   - Debian's `prometheus` (prometheus + promtool), run on loopback by tests/e2e.
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
docker_engine=${DOCKER_ENGINE_TOOL:-$repo_root/../shared/tools/docker-engine}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "install-test-deps: installing Debian's prometheus"
  # The package's maintainer scripts would start a system-wide Prometheus on :9090; tests run
  # their own on loopback, so forbid service starts for the duration of the install.
  added_policy=false
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    added_policy=true
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
  if $added_policy; then as_root rm -f /usr/sbin/policy-rc.d; fi
fi

if [[ ! -f $docker_engine ]]; then
  echo "install-test-deps: $docker_engine not found; the e2e tests need ../shared beside the checkout" >&2
  exit 1
fi
as_root bash "$docker_engine"
