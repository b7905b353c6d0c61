# Two commands a newcomer needs: `make demo` runs the product, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# test processes: one more than the cores, at most 4 (each runs its own servers; a test spends
# much of its time waiting on sockets and the database, so a third process fills 2 cores)
TEST_WORKERS ?= $(shell $(PY) -c 'import os; print(min(4, (os.cpu_count() or 1) + 1))')

.PHONY: demo test lint bench clean constraints

# what runs, and only that (`make demo`): exactly the versions in constraints.txt (what the
# suite last passed with)
$(BIN)/stekker: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $(BIN)/stekker

# what the tests, the linters and the benches need besides (pytest, mypy, ruff, Playwright, ...);
# the stamp is renewed with the venv, so a changed pyproject.toml reinstalls both
DEV := $(VENV)/.dev-installed
$(DEV): $(BIN)/stekker
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(DEV)

demo: $(BIN)/stekker
	$(BIN)/stekker demo

test: $(DEV)
	scripts/ensure-postgres
	scripts/ensure-cluster-tools
	# the console's browser tests: Debian's chromium and axe-core (without them they skip; under CI=true they fail)
	-scripts/ensure-browser
	$(BIN)/ruff check stekker tests bench
	$(BIN)/mypy stekker
	# the OCPI interop peer's own virtualenv, built once before the parallel tests (its pip
	# install would otherwise compete with them); offline, the interop test says what to do
	-$(BIN)/python -m tests.interop.peer_env
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(DEV)
	$(BIN)/ruff check stekker tests bench
	$(BIN)/mypy stekker

bench: $(DEV)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) stekker.db *.egg-info

# after raising a bound in pyproject.toml: newest allowed versions, written back as the pins
constraints:
	$(PY) -m venv .cache/constraints-venv
	.cache/constraints-venv/bin/pip install --quiet --upgrade pip
	.cache/constraints-venv/bin/pip install --quiet -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; .cache/constraints-venv/bin/pip freeze --exclude-editable | grep -v '^stekker'; } > constraints.new
	mv constraints.new constraints.txt
