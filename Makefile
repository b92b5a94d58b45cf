# Segment Insights. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PY := .venv/bin/python

# Users' questions stay on their network; TensorFlow and SQLAlchemy keep quiet.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: help venv demo test lint format chat serve train bench browser spark haproxy clean

help:
	@echo "make demo    demo data -> segments -> trained assistant -> terminal chat (embedded SQLite)"
	@echo "make test    lint + the whole test suite (SQLite and MariaDB)"
	@echo "make chat    terminal chat on \$$DATABASE_URL (builds demo data if there is no run)"
	@echo "make serve   action server + Rasa server (REST, Slack, web chat) on loopback ports"
	@echo "             RASA_SERVERS=2 make serve: two Rasa servers behind HAProxy, Redis locks"
	@echo "make bench   performance figures (see bench/README.md)"

venv:
	@scripts/bootstrap

demo: venv
	DATABASE_URL= $(PY) -m segmentation demo
	DATABASE_URL= $(PY) -m bot chat

chat: venv
	$(PY) -m bot chat

# Rasa servers for `make serve` (more than one: behind HAProxy, with Redis at REDIS_URL).
RASA_SERVERS ?= 1
serve: venv
	@if [ "$(RASA_SERVERS)" -gt 1 ]; then scripts/ensure-haproxy; fi
	$(PY) -m bot serve --rasa-servers $(RASA_SERVERS)

train: venv
	$(PY) -m bot train

lint: venv
	$(PY) -m ruff check .
	$(PY) -m black --check --quiet .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m black --quiet .

browser:
	@scripts/ensure-browser

spark:
	@scripts/ensure-spark

# Several Rasa servers sit behind Debian's HAProxy: `make test` installs it when missing.
haproxy:
	@scripts/ensure-haproxy

test: venv browser spark haproxy lint
	$(PY) -m pytest

bench: venv
	$(PY) bench/bench_ingest.py --users 1000000
	$(PY) bench/bench_build.py
	$(PY) bench/bench_chat.py
	$(PY) bench/bench_soak.py
	$(PY) bench/bench_export.py
	$(PY) bench/bench_spark.py

clean:
	rm -rf var models results test-artifacts .pytest_cache .ruff_cache
