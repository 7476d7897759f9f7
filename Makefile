# The two commands: `make run` and `make test`. Only Python 3.11+ is needed; everything else is
# installed into .venv, and PostgreSQL/Redis are embedded under var/ unless DATABASE_URL/REDIS_URL
# (for tests: TEST_DATABASE_URL/TEST_REDIS_URL) name servers to use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run test soak install browser pgbouncer bench lint typecheck clean

$(PY):
	@echo "==> creating the virtual environment ($(VENV))"
	@$(PYTHON) -m venv $(VENV)

# make run: the production packages plus embedded PostgreSQL/Redis and a mail sink.
$(RUN_STAMP): requirements.txt requirements-local.txt | $(PY)
	@echo "==> installing Python packages for make run (requirements-local.txt; a minute or so the first time)"
	@$(PIP) -r requirements-local.txt
	@touch $@

# make test: the same plus the test tools.
$(TEST_STAMP): requirements.txt requirements-local.txt requirements-dev.txt | $(PY)
	@echo "==> installing Python packages for make test (requirements-dev.txt; a minute or so the first time)"
	@$(PIP) -r requirements-dev.txt
	@touch $@ $(RUN_STAMP)

install: $(TEST_STAMP)

# manage.py dev prints its own phases, and exits 0 on Ctrl-C (see devstack/run.py).
run: $(RUN_STAMP)
	@$(PY) manage.py dev

test: $(TEST_STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

# Longer runs of what `make test` samples: schemathesis with many examples per operation and the
# boundary values of every field, as a customer and as an admin (FUZZ_EXAMPLES to change how many);
# then faults under load, several rounds (SOAK_ROUNDS to change how many).
soak: $(TEST_STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_PHASES=examples,coverage,fuzzing \
		$(PY) -m pytest tests/test_openapi_fuzzing_finds_no_500.py $(PYTEST_ARGS)
	@SOAK_ROUNDS=$${SOAK_ROUNDS:-5} $(PY) -m pytest --timeout=3600 -k soak $(PYTEST_ARGS) tests/test_faults_under_load.py

# Chromium for the browser test of /api/docs and /api/redoc (Debian's package; needs root). Without
# it that test is skipped, and pytest's summary says so.
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "==> installing Chromium (apt-get)"; \
	  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }

# PgBouncer for tests/test_behind_pgbouncer.py (Debian's package; needs root). The test starts its
# own pgbouncer process on a free port (the package's service is not used); without the binary it is
# skipped, and pytest's summary says so.
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || { echo "==> installing PgBouncer (apt-get)"; \
	  apt-get install -y -q pgbouncer >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q pgbouncer >/dev/null; }; }

# wrk is checked (and installed when root with apt-get) before anything else; bench.run checks again.
# It exits non-zero when a target of issue 18 is missed, after writing bench/results/.
bench: $(TEST_STAMP)
	@$(PY) -m bench.load
	@$(PIP) -r requirements-bench.txt
	$(PY) -m bench.run $(BENCH_ARGS)

# Formatting, lint and types (.ci/run runs this before the tests): ruff, then mypy, strict on
# models/ and tasks/ (mypy.ini). `make typecheck` runs mypy alone.
lint: $(TEST_STAMP)
	@$(PIP) -r requirements-lint.txt
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

typecheck: $(TEST_STAMP)
	@$(PIP) -r requirements-lint.txt
	$(PY) -m mypy

clean:
	rm -rf var/test .pytest_cache
