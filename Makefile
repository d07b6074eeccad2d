# HealthGuard Ops. `make up` runs the suite, `make test` runs the tests; both set up what they
# need first (scripts/bootstrap.sh). With Docker installed, `docker compose up -d` runs it in
# containers instead.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: bootstrap up down logs test lint env bench compose-test

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
	@scripts/compose-test.sh

# The Compose suite built, started and tested end to end (issue 18; README, "Tests"): on the
# engine that answers, or on a dockerd of its own (Debian, as root), with stand-in images where
# upstream's cannot be pulled.
compose-test: bootstrap
	@scripts/compose-test.sh

# The benchmarks (issue 10) on a suite of their own: `make bench`, or `make bench BENCH_QUICK=1`
# for a quick pass whose figures mean nothing. Results in bench/results/.
bench: bootstrap
	$(PY) bench/run.py $(if $(BENCH_QUICK),--quick)
