#!/bin/bash
# Issue 17: did the house-cleaning (core/ops split, error tree, typed vocabulary, gateway surface, mypy fixes) move
# completion latency? Runs bench/completion.py at BEFORE (the commit before the clean-up) and at AFTER, one after
# the other on the same machine and trace, and prints the engine's perceived p50/p95 and their AFTER/BEFORE ratio.
# AFTER's "unwarmed" arm is compared: the file-open warm-up of issue 18 is not part of the clean-up.
#     bash bench/completion_refactor.sh [BEFORE] [AFTER]     (default ad0f570 and HEAD; ~13 min on 2 cores)
# Both bench reports are kept as $KEEL_REFACTOR_OUT/completion-refactor-{before,after}.json (default /tmp).
set -eu
REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
BEFORE=${1:-ad0f570}
AFTER=${2:-HEAD}
WORK=$(mktemp -d /tmp/keel-refactor-XXXX)
trap 'git -C "$REPO" worktree remove --force "$WORK/before" >/dev/null 2>&1; git -C "$REPO" worktree remove --force "$WORK/after" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
git -C "$REPO" worktree add -q --detach "$WORK/before" "$BEFORE"
git -C "$REPO" worktree add -q --detach "$WORK/after" "$AFTER"
TRACE="$REPO/data/completion/trace.jsonl"
for side in before after; do
  # exit 1 only says a latency target was missed; a run that printed no JSON is the failure
  (cd "$WORK/$side" && HF_HUB_OFFLINE=1 "$REPO/.venv/bin/python" bench/completion.py --json --trace "$TRACE" \
      > "$WORK/$side.json" 2> "$WORK/$side.log") || true
  "$REPO/.venv/bin/python" -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/$side.json" 2>/dev/null \
      || { echo "bench failed at $side:"; tail -20 "$WORK/$side.log"; exit 1; }
  cp "$WORK/$side.json" "${KEEL_REFACTOR_OUT:-/tmp}/completion-refactor-$side.json"
done
"$REPO/.venv/bin/python" - "$WORK/before.json" "$WORK/after.json" <<'PY'
import json, sys
before, after = (json.load(open(p))["metrics"] for p in sys.argv[1:3])
arm = "unwarmed" if "unwarmed_perceived_p50_ms" in after else "engine"
for q in ("p50", "p95"):
    b, a = before[f"engine_perceived_{q}_ms"], after[f"{arm}_perceived_{q}_ms"]
    print(f"completion perceived {q}: before {b} ms, after {a} ms, ratio after/before {a / b:.3f}")
for name in ("no_suggestion_share", "model_tokens_per_keystroke"):
    b, a = before[f"engine_{name}"], after[f"{arm}_{name}"]
    print(f"{name}: before {b}, after {a}")
PY
