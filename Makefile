# Keel: `make run` sets up and starts the app on embedded defaults; `make test` sets up and runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
KEEL   := $(VENV)/bin/keel
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
# What `make typecheck` checks with mypy: all of the app's code.
TYPED  := core ui pages

.PHONY: run test typecheck evals install seed classifier system-deps system-deps-run bench lint clean

run: install system-deps-run seed classifier
	$(KEEL) serve

test: install system-deps
	$(PY) -m ruff check core ui pages
	$(MAKE) --no-print-directory typecheck
	$(KEEL) prompts lint
	$(MAKE) --no-print-directory classifier
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory evals

# mypy (settings in pyproject.toml) on all of core/, ui/ and pages/: exit 1 on any type error.
typecheck: install
	$(PY) -m mypy $(TYPED)

# The fast eval suites in a fresh data directory, gated by data/evals/baselines/*.json: exit 1 on a regression,
# then agent branch coverage: exit 1 when a branch production takes has no eval case.
evals: install
	home=$$(mktemp -d) && KEEL_HOME=$$home $(KEEL) demo seed --traffic 0 >/dev/null && \
	KEEL_HOME=$$home $(KEEL) eval run --fast && KEEL_HOME=$$home $(KEEL) eval coverage; status=$$?; \
	rm -rf $$home; exit $$status

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_python.sh scripts/install_llama_cpp.sh
	test -x $(PY) || python3 -m venv $(VENV)
	bash scripts/install_python.sh $(PY)
	touch $@

seed: install
	$(KEEL) demo seed

# The support intent encoder, tuned on the training split (about three minutes the first time, then cached by
# data hash in ~/.cache/keel), and the classifier head: built here so that the first chat message does not wait.
classifier: install
	$(KEEL) support build

system-deps:
	bash scripts/install_system_deps.sh

# What the running app itself needs from Debian (ripgrep for PR review's code search); tests need more.
system-deps-run:
	bash scripts/install_system_deps.sh --run

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var test-output
