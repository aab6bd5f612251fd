# Keel: `make run` sets up and starts the app on embedded defaults; `make test` sets up and runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
KEEL   := $(VENV)/bin/keel
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test install seed system-deps bench lint clean

run: install seed
	$(KEEL) serve

test: install system-deps
	$(KEEL) prompts lint
	$(PY) -m pytest -q -p no:cacheprovider

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

seed: install
	$(KEEL) demo seed

system-deps:
	bash scripts/install_system_deps.sh

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var test-output
