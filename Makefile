# routeguard — every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install run test lint bench clean
.PHONY: fuzz chaos soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,cluster]'
	touch $(STAMP)

install: $(STAMP)

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

