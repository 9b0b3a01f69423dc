# Two commands do all set-up on a fresh machine:
#   make run    — install into .venv, import the example roster, talk to the bot in the terminal
#   make test   — install into .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ME ?= demo
STAMP := $(VENV)/.installed

.PHONY: install run serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/alliance-bot studios import config/roster.example.yaml
	$(BIN)/alliance-bot chat --user $(ME) $(if $(GROUP),--group $(GROUP),)

serve: $(STAMP)
	$(BIN)/alliance-bot studios import config/roster.example.yaml
	$(BIN)/alliance-bot serve

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bot
	$(BIN)/mypy bot

bench: $(STAMP)
	$(BIN)/python bench/bench_callbacks.py
	$(BIN)/python bench/bench_routing.py
	$(BIN)/python bench/bench_reminders.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
