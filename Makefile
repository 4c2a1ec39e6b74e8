# Everyday commands; each mirrors what the README and .ci/run do.
.PHONY: install lint check test bench soak schema docs

install:
	pip install -e ".[dev]"

lint:
	ruff check runner tests bench examples docs
	ruff format --check runner tests bench examples docs
	mypy runner

# every check CI runs: lint, format, types, then the whole suite
check: lint
	pytest -n auto

test:
	pytest -n auto

bench:
	python bench/compare.py

soak:
	python bench/soak.py

schema:
	runner schema > schemas/worker.schema.json

# the generated pages (worker.toml and CLI references, benchmark tables from bench/figures/*.json);
# tests/docs/test_reference.py fails when they are stale
docs:
	python docs/_tools/reference.py
