# The README's two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A random audit key per invocation, for run and verify, written nowhere; the demo folder is re-created, since
# a new key cannot check the anchor an earlier invocation signed.
demo: setup
	rm -rf runs/demo
	key=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(32))'); \
	CPO_AUDIT_KEY=$$key $(BIN)/cpo run --out runs/demo --approve-as demo && \
	CPO_AUDIT_KEY=$$key $(BIN)/cpo audit verify runs/demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) runs .pytest_cache
