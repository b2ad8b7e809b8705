# The one list of how to do things here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -q

.PHONY: install run demo test bench-relay bench-relay-cost bench-fanout bench-scale chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev extras

run: $(STAMP)  ## migrate the database and start the bot (the local playground without tokens)
	$(BIN)/concierge db upgrade
	$(BIN)/concierge run

demo: $(STAMP)  ## play the scripted story and print the transcript
	$(BIN)/concierge demo

test: $(STAMP)  ## lint, type-check, then run the whole suite (SQLite and a throw-away PostgreSQL)
	$(BIN)/ruff check concierge adapters scheduling monitoring bench tests
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

bench-relay: $(STAMP)  ## relay throughput and latency on SQLite and PostgreSQL
	$(BIN)/python -m bench.relay

bench-relay-cost: $(STAMP)  ## what a relay costs in a conversation of 20 lines and of 5,000, on SQLite and PostgreSQL
	$(BIN)/python -m bench.relay_cost

bench-fanout: $(STAMP)  ## digest fan-out under a rate limit; planning a million subscriptions; 3 processes, one budget
	$(BIN)/python -m bench.fanout

bench-scale: $(STAMP)  ## 1, 2 and 4 bot processes on one PostgreSQL database: throughput, duplicates, losses
	$(BIN)/python -m bench.scale

chaos: $(STAMP)  ## the real Slack bot under kills, a locked database and a failing Slack: nothing lost or doubled?
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) *.egg-info concierge.db concierge.db-wal concierge.db-shm concierge-files .mypy_cache .ruff_cache
