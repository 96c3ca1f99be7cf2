# mmsparse: the two commands of the README, plus the setup step they share.
#   make demo   set everything up, then run the main job on built-in toy data
#   make test   set everything up, then run the whole test suite
# Both create/refresh the virtualenv .venv first (make install); every step is idempotent.
VENV   ?= .venv
PY     := $(abspath $(VENV))/bin/python
TASK   ?= det
PYTEST_ARGS ?=

.PHONY: install test demo clean-venv

install:
	@bash tools/install/install.sh $(abspath $(VENV))

test: install
	@start=$$(date +%s); \
	$(PY) -m pytest tests -p no:cacheprovider -q -rfEs --durations=15 $(PYTEST_ARGS); rc=$$?; \
	echo "[make test] pytest took $$(( $$(date +%s) - start )) s"; exit $$rc

demo: install
	@$(PY) tools/demo.py --task $(TASK)

clean-venv:
	rm -rf $(VENV)
