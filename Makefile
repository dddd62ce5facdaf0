# fraudops: `make demo` runs the main job, `make test` runs every test tier.
# Both install what they need: uv (from PyPI, with pip) and the locked environment (.venv).
PYTHON ?= python3
# the exact uv that resolves and installs uv.lock (pinned: the installer runs before any check)
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
RUN := $(UV) run --locked --no-sync
export DO_NOT_TRACK := true
export BENTOML_DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo train test test-unit lint audit bench clean

install: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version 2>/dev/null | grep -qE "^uv $(UV_VERSION)( |$$)" \
		|| $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	# bytecode at install: where PYTHONDONTWRITEBYTECODE is set (this CI machine) every process
	# would otherwise compile its imports again (a CLI call took 7.9 s instead of 3.3 s)
	$(UV) sync --locked --compile-bytecode
	@touch $@

demo: install
	$(RUN) fraudops demo

train: install
	$(RUN) fraudops train

test: install
	# two workers, a test file each at a time (its module fixtures run once); the suite keeps
	# one core idle a third of the time when run serially (tests/conftest.py: thread limits)
	$(RUN) pytest -n 2 --dist loadfile --durations=15

test-unit: install
	$(RUN) pytest -m unit

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy src pipelines services monitoring

# pip-audit on every locked package; exits 1 on a known vulnerability, 3 when the vulnerability
# service cannot be reached (see benchmarks/audit.py)
audit: install
	$(RUN) python benchmarks/audit.py

bench: install
	$(RUN) python benchmarks/features.py
	$(RUN) python benchmarks/handbook_protocol.py
	$(RUN) python benchmarks/flow_overhead.py
	$(RUN) python benchmarks/serving.py
	$(RUN) python benchmarks/drift.py
	$(RUN) python benchmarks/batch_scoring.py
	# 1x, 10x and 50x the handbook's volume, then batch scoring at 50x: 33 min on 2 cores
	$(RUN) python benchmarks/dask_features.py
	$(RUN) python benchmarks/spec_models.py
	$(RUN) python benchmarks/hot_entity.py
	$(RUN) python benchmarks/online_batch.py
	$(RUN) python benchmarks/reason_codes.py
	$(RUN) python benchmarks/shadow.py
	$(RUN) python benchmarks/drift_rules.py

clean:
	rm -rf .venv .fraudops .pytest_cache .mypy_cache .ruff_cache
