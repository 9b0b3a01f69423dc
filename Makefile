# Two commands do all set-up on a fresh machine:
#   make run    — install into .venv, import the example roster, talk to the bot in the terminal
#                 (ME=USER speaks as USER, GROUP=NAME in a group, ADMIN=1 as an admin for this session)
#   make test   — install into .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ME ?= demo
ADMIN ?=
STAMP := $(VENV)/.installed

.PHONY: install lock run serve test lint bench clean

# Dependencies come from the lock file (exact versions, sha256-checked); the project itself is installed on top.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# After changing the ranges in pyproject.toml: install within them, then pin what was installed.
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --upgrade -e '.[dev]'
	$(BIN)/python tools/lock.py

install: $(STAMP)

run: $(STAMP)
	$(BIN)/alliance-bot studios import config/roster.example.yaml
	$(BIN)/alliance-bot chat --user $(ME) $(if $(GROUP),--group $(GROUP),) $(if $(filter 1 yes true,$(ADMIN)),--admin,)

serve: $(STAMP)
	$(BIN)/alliance-bot studios import config/roster.example.yaml
	$(BIN)/alliance-bot serve

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench tools
	$(BIN)/mypy bot

bench: $(STAMP)
	$(BIN)/python bench/bench_callbacks.py
	$(BIN)/python bench/bench_routing.py
	$(BIN)/python bench/bench_reminders.py
	$(BIN)/python bench/bench_startup.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
