#!/bin/bash
# Issue 12: time a fresh `make run` to a healthy app. A new clone of this repository (with ../shared beside it),
# an empty KEEL_CACHE_DIR and KEEL_HOME, timed to the first 200 from /api/health; then the app is stopped.
#     bash bench/fresh_make_run.sh [workdir]      (default /tmp/keel-fresh-run; port 8599, IdP port 9599)
set -u
REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
WORK=${1:-/tmp/keel-fresh-run}
rm -rf "$WORK" && mkdir -p "$WORK" && git clone -q "$REPO" "$WORK/main" && cp -r "$REPO/../shared" "$WORK/shared"
export KEEL_CACHE_DIR="$WORK/cache" KEEL_HOME="$WORK/home" KEEL_PORT=8599 KEEL_PUBLIC_URL=http://localhost:8599 \
       KEEL_DEV_IDP_PORT=9599
cd "$WORK/main" || exit 1
start=$(date +%s)
setsid make run > "$WORK/run.log" 2>&1 &
pid=$!
while true; do
  code=$(curl -s -o /dev/null -w "%{http_code}" http://localhost:8599/api/health || true)
  elapsed=$(( $(date +%s) - start ))
  if [ "$code" = "200" ]; then echo "fresh make run: healthy after ${elapsed} s (target <= 300 s)"; break; fi
  if [ "$elapsed" -gt 1200 ]; then echo "fresh make run: not healthy after 1200 s (last status $code)"; break; fi
  sleep 2
done
grep -E "installed in|built in" "$WORK/run.log"
kill -- -"$pid" 2>/dev/null; sleep 3; pkill -f "$WORK/main" 2>/dev/null; true
