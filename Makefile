PY ?= python3
# the suite waits on servers and processes more than it computes (about 1.3 cores busy on
# two with three processes), so test files run on this many pytest processes, each with its
# own nats-server, Postgres and chDB; 0 runs them in this process, one after another.
# On the 2-core machine: three 136-158 s, four 129-162 s (seven runs each, no failure at four)
PYTEST_WORKERS ?= 4
# mypy's cache lives beside pip's and uv's, outside the clone: a fresh clone checks in ~1 s
# instead of ~12 s (mypy checks every cached module against its file's hash)
MYPY_CACHE ?= $(HOME)/.cache/jetgate/mypy
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check install install-test bench clean schemas

# uv (from PyPI, into the venv) installs the project: with warm caches it takes ~15 s where
# pip took ~45 s, most of a clean clone's `make test` before pytest. Bytecode is compiled
# at install (pip did it, uv does not by default): with PYTHONDONTWRITEBYTECODE set, as
# here, every service start would otherwise compile its dependencies again
UV := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(BIN)/uv: $(BIN)/python
	$(BIN)/pip install -q uv

install: $(BIN)/uv
	$(UV) -e .

install-test: $(BIN)/uv
	$(UV) -e '.[test]'

run: install
	$(BIN)/jetgate up

check: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy --cache-dir $(MYPY_CACHE)

# bytecode of the project's modules, written once: the suite starts services and the CLI as
# processes again and again, and with PYTHONDONTWRITEBYTECODE set each would compile them
# again (~0.3 s of CPU per ingress start)
test: check
	$(BIN)/python -m compileall -q jetgate shared services
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

schemas: install
	$(BIN)/jetgate events schemas

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .jetgate
