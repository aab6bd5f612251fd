#!/usr/bin/env bash
# Debian packages the tests need: Chromium for end-to-end tests, PostgreSQL for the second SQL backend,
# ripgrep for the PR review agent's codebase search.
# With --run: only what the running app needs (`make run`): ripgrep.
set -euo pipefail
need=()
command -v rg >/dev/null 2>&1 || need+=(ripgrep)  # PR review: search_codebase
if [ "${1:-}" != "--run" ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v runuser >/dev/null 2>&1 || need+=(util-linux)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" $([ "${1:-}" = "--run" ] || echo fonts-liberation) >/dev/null
