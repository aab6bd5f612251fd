#!/usr/bin/env bash
# Install Keel into the virtualenv. llama.cpp compiles (CPU-bound, ~4 min on 2 cores) while pip fetches and
# unpacks every other dependency (mostly I/O), so a fresh machine waits for the slower of the two, not both.
set -euo pipefail
PY=${1:?usage: install_python.sh PYTHON}
cd "$(dirname "$0")/.."
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
"$PY" - "$reqs" <<'PYEOF'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["test"]
open(sys.argv[1], "w").write("\n".join(r for r in wanted if not r.startswith("llama-cpp-python")) + "\n")
PYEOF
start=$(date +%s)
bash scripts/install_llama_cpp.sh "$PY" & llama=$!
deps=0
"$PY" -m pip install -q --disable-pip-version-check -r "$reqs" || deps=$?
wait $llama
[ $deps -eq 0 ] || exit $deps
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
echo "python packages installed in $(( $(date +%s) - start )) s"
