#!/usr/bin/env bash
# Installs the browser the web page's end-to-end tests drive: Debian's `chromium` (/usr/bin/chromium).
# Idempotent and a fast no-op when it is already there (CI calls it before every pytest run).
#
#   scripts/install-browser.sh
#
# Playwright for Python (the `dev` extra) drives this Chromium through `executable_path`; its own
# browser download (`playwright install`) is never used: it needs a CDN these machines cannot reach,
# and a pinned Debian package is what CI and developers share.
set -euo pipefail

browser=${DIGITSERVE_CHROMIUM:-/usr/bin/chromium}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if [[ -x $browser ]] && "$browser" --version >/dev/null 2>&1; then
  exit 0
fi

echo "install-browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine or container has no package lists (or stale ones that no longer know the
# package): refresh them only then.
if ! apt-cache show chromium >/dev/null 2>&1; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
"$browser" --version
