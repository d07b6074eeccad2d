# HealthGuard Ops. `make up` runs the suite, `make test` runs the tests; both set up what they
# need first (scripts/bootstrap.sh). With Docker installed, `docker compose up -d` runs it in
# containers instead.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: bootstrap up down logs test lint env

bootstrap:
	@scripts/bootstrap.sh

.env: .env.example
	@$(PY) scripts/make_env.py

env: bootstrap .env

up: env
	@scripts/local-up.sh

down:
	@scripts/local-down.sh

logs:
	@tail -n 100 -F .run/honcho.log

lint: bootstrap
	$(PY) -m ruff check services tests bench scripts

test: lint
	cd web-ui && npm run lint --silent && npm test --silent
	$(PY) -m pytest
