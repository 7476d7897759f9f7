# The two commands: `make run` and `make test`. Only Python 3.11+ is needed; everything else is
# installed into .venv, and PostgreSQL/Redis are embedded under var/ unless DATABASE_URL/REDIS_URL
# (for tests: TEST_DATABASE_URL/TEST_REDIS_URL) name servers to use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test soak install bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py dev

test: $(STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

# Longer runs of what `make test` samples: schemathesis with many examples per operation and the
# boundary values of every field, as a customer and as an admin (FUZZ_EXAMPLES to change how many).
soak: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_PHASES=examples,coverage,fuzzing \
		$(PY) -m pytest tests/test_openapi_fuzzing_finds_no_500.py $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.run $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-lint.txt
	$(PY) -m ruff check .

clean:
	rm -rf var/test .pytest_cache
