# Everyday commands; each mirrors what the README and .ci/run do.
.PHONY: install lint test bench soak schema

install:
	pip install -e ".[dev]"

lint:
	ruff check runner tests bench
	mypy runner

test:
	pytest

bench:
	python bench/compare.py

soak:
	python bench/soak.py

schema:
	runner schema > schemas/worker.schema.json
