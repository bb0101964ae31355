# routeguard — every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= $(or $(ROUTEGUARD_PORT),8080)

.PHONY: install lock run test lint bench clean
.PHONY: fuzz chaos soak

# The development environment is the pinned lock file (every extra + dev tools), then this project without deps.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Re-pin requirements-dev.lock from pyproject.toml's ranges (pip-tools); the project itself is left out of it.
lock: $(STAMP)
	$(BIN)/pip-compile --extra dev --strip-extras --no-header --no-emit-index-url --no-emit-find-links --quiet \
		--output-file requirements-dev.lock.tmp pyproject.toml
	{ echo "# The pinned development and CI environment (every extra + dev tools). Regenerate with: make lock"; \
	  echo "# Library users install from pyproject.toml's ranges instead: pip install routeguard / 'routeguard[server]'."; \
	  awk '/^routeguard @/ {skip=1; next} skip && /^    #/ {next} {skip=0; print}' requirements-dev.lock.tmp; \
	} > requirements-dev.lock
	rm -f requirements-dev.lock.tmp

run: $(STAMP)
	$(BIN)/routeguard serve --config examples/clinical-triage.yaml --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/decision.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/proxy.py
	$(BIN)/python bench/review.py
	@echo "LiteLLM comparison (bench-only extra): $(BIN)/pip install -e '.[bench]' && $(BIN)/python bench/vs_litellm.py"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# security hardening (issue 13): longer runs of what CI runs bounded
FUZZ_SECONDS ?= 600
FUZZ_EXAMPLES ?= 200
ROUNDS ?= 50
fuzz: $(STAMP)
	ROUTEGUARD_FUZZ_SECONDS=$(FUZZ_SECONDS) ROUTEGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/pytest -q -p no:cacheprovider tests/integration/test_api_fuzz.py
	ROUTEGUARD_PARSER_EXAMPLES=5000 $(BIN)/pytest -q -p no:cacheprovider tests/unit/test_parser_fuzz.py

chaos: $(STAMP)
	ROUTEGUARD_CHAOS_ROUNDS=$(ROUNDS) $(BIN)/pytest -q -p no:cacheprovider tests/integration/test_crash_publish.py

soak: $(STAMP)
	$(BIN)/python bench/soak.py

