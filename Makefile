# The two commands a reader needs: `make serve` and `make test`.
# Every target creates or refreshes .venv first, from the pinned requirements.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FRAMEWORK ?= flask
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
ACCESS_LOG ?= 1

.PHONY: install serve test fuzz lint format lock notebooks docs bench

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(VENV)/.installed

serve: install
	$(BIN)/python -m integrations.serve --framework $(FRAMEWORK) \
		--host $(HOST) --port $(PORT) --workers $(WORKERS) \
		$(if $(filter 1,$(ACCESS_LOG)),--access-log,--no-access-log)

# -rs prints why a test skipped: Chromium or PostgreSQL missing, say.
test: install lint
	$(BIN)/pytest -n auto -rs
	# The notebooks, strictly: every output must match (ids and times sanitized).
	# They teach the in-memory storage, whatever SCIM_DATABASE_URL says.
	env -u SCIM_DATABASE_URL $(BIN)/pytest -n auto --dist loadfile --nbval notebooks \
		--nbval-sanitize-with notebooks/sanitize.cfg

# Fuzzing with the hostile-input suite (tests/test_hostile_input.py): `make
# test` checks its properties on a small seeded sample; this checks them on
# fresh random requests for about FUZZ_MINUTES minutes on 2 cores, longer when
# it finds failures: it shrinks each to a minimal request, and keeps it in the
# temporary directory so that the next run tries it first.
FUZZ_MINUTES ?= 10
fuzz: install
	SCIM_FUZZ=1 FUZZ_MINUTES=$(FUZZ_MINUTES) $(BIN)/pytest tests/test_hostile_input.py -n auto

notebooks: install
	$(BIN)/jupyter lab notebooks

# Throughput of the three integrations against scim2-server, at 1,000 and
# 100,000 users, then the cost of one membership change in groups of 10 and
# 100,000 members: tables on stdout, the same in bench-results/bench.json and
# groups.json. Not a test: about an hour in all, on a quiet machine;
# BENCH_ARGS="--scenario users" (or groups) runs one half.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The docs site with live reload, on loopback only.
DOCS_PORT ?= 8001
docs: install
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every dependency after editing requirements.in.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	.lock-venv/bin/pip freeze > requirements.txt
	rm -rf .lock-venv
