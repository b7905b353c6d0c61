# Two commands a newcomer needs: `make demo` runs the product, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/stekker: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/stekker

demo: $(BIN)/stekker
	$(BIN)/stekker demo

test: $(BIN)/stekker
	scripts/ensure-postgres
	$(BIN)/ruff check stekker tests bench
	$(BIN)/mypy stekker
	$(BIN)/python -m pytest

lint: $(BIN)/stekker
	$(BIN)/ruff check stekker tests bench
	$(BIN)/mypy stekker

bench: $(BIN)/stekker
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) stekker.db *.egg-info
