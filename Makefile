# mmsparse: the two commands of the README, plus the setup step they share.
#   make demo   set everything up, then run the main job on built-in toy data
#   make test   set everything up, lint, then run the whole test suite
#   make lint   flake8 + isort + yapf on the tree (configs: .flake8, .isort.cfg, .style.yapf)
# Both create/refresh the virtualenv .venv first (make install); every step is idempotent.
VENV   ?= .venv
PY     := $(abspath $(VENV))/bin/python
TASK   ?= det
PYTEST_ARGS ?=

.PHONY: install lint test demo clean-venv

LINT_PATHS := mmsparse tools tests configs setup.py

install:
	@bash tools/install/install.sh $(abspath $(VENV))

lint: install
	@echo "[make lint] flake8, isort, yapf"; \
	$(abspath $(VENV))/bin/flake8 . && \
	$(abspath $(VENV))/bin/isort --check-only --diff $(LINT_PATHS) && \
	diff=$$($(abspath $(VENV))/bin/yapf --diff -r $(LINT_PATHS)) && test -z "$$diff" || \
	{ echo "$$diff"; echo "[make lint] FAILED: run 'isort $(LINT_PATHS) && yapf -i -r $(LINT_PATHS)' and fix what flake8 prints"; exit 1; }
	@echo "[make lint] clean"

test: install lint
	@start=$$(date +%s); \
	$(PY) -m pytest tests -p no:cacheprovider -q -rfEs --durations=15 $(PYTEST_ARGS); rc=$$?; \
	echo "[make test] pytest took $$(( $$(date +%s) - start )) s"; exit $$rc

demo: install
	@$(PY) tools/demo.py --task $(TASK)

clean-venv:
	rm -rf $(VENV)
