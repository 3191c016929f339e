# The project's vocabulary: `make demo`, `make test`, `make lint`, `make bench`.
# Each target installs what it needs into ./.venv first (quick when it is already there).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SPEED ?= 300
DAGSTER_PORT ?= 3000
DASHBOARD_PORT ?= 8501
export DAGSTER_DISABLE_TELEMETRY := 1
# Python's bytecode caches stay on for our targets even where the environment turns them off
# (container images often set PYTHONDONTWRITEBYTECODE=1): the suite, the demo and the bench start
# hundreds of Python processes, and without caches each one compiles every module it imports
# from source again (importing dagster's webserver took 4.5 s of CPU instead of 1.9 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install compiled demo demo-cloud test lint format bench lock clean browser postgres lambda-zip deploy chaos java spark-score

install: $(STAMP) compiled

# The hot path's modules compiled by Cython from their own .py files, in place (musicnft/compiled.py
# says which and why): rebuilt when a source changed, quick otherwise. Without a C compiler the
# build is reported and the same modules run as pure Python, with the same results.
compiled: $(STAMP)
	$(BIN)/python -m musicnft.devtools.compile build

# Reproducible: every package comes from requirements.lock (uv pip compile of pyproject.toml).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

lock: $(VENV)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python $(BIN)/python -o requirements.lock

# Replays the shipped sample (and its seeded NFT sales, beside the posts) through the whole
# embedded hot path, live-stamped, with Dagster
# (sensor, schedule, UI on 127.0.0.1:$(DAGSTER_PORT)) until Ctrl-C or DEMO_SECONDS=N seconds,
# then materializes the windows it touched and prints the status.
demo: $(STAMP) compiled java
	MUSICNFT_DELIVERY_BUFFER_SECONDS=$${MUSICNFT_DELIVERY_BUFFER_SECONDS:-5} $(BIN)/musicnft run --fresh --speed $(DEMO_SPEED) --restamp --sales --dagster --dagster-port $(DAGSTER_PORT) --dashboard --dashboard-port $(DASHBOARD_PORT) $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS),)

# The cloud profile (Kinesis, S3) rehearsed against moto server on 127.0.0.1; DEMO_SECONDS=N too.
demo-cloud: $(STAMP) compiled
	MUSICNFT_DELIVERY_BUFFER_SECONDS=$${MUSICNFT_DELIVERY_BUFFER_SECONDS:-10} $(BIN)/python -m musicnft.devtools.cloud_rehearsal --speed $(DEMO_SPEED) --dagster-port $(DAGSTER_PORT) --dashboard-port $(DASHBOARD_PORT) $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS),)

# Parallel workers (pytest-xdist): most of the suite's time is spent waiting on subprocesses and
# local servers, so more workers than cores still pays. Each worker takes a group at a time (a
# file; a slow test alone; every test of the local Spark session), longest first as
# tests/conftest.py orders them (--no-loadscope-reorder keeps that order). The 30 slowest tests
# are listed at the end (issue #14 item 8: where the suite's time goes).
TEST_WORKERS ?= 4
test: $(STAMP) compiled browser postgres java
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=30

# The dashboard's browser test drives Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The DuckLake catalog test on PostgreSQL starts Debian's postgresql on 127.0.0.1 in a temp dir.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the DuckLake catalog test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The Spark scoring job (docs/spark.md) and its tests run on Debian's Java 17 (Spark 4 needs 17+).
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Debian's openjdk-17-jre-headless for Spark"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# Score everything in the local lake's raw/ now with Spark, into scored/ (docs/spark.md).
spark-score: $(STAMP) compiled java
	$(BIN)/musicnft spark score --available-now

# ruff for style, mypy for types (strict on the contract and the ports: see pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The consumer's deployable Lambda bundle: dist/lambda.zip (see lambda/build_zip.py). It carries
# binary wheels for one CPython, so it follows the stack's runtime: LAMBDA_RUNTIME=python3.11
# (read by infra/deploy.sh) builds for 3.11; default 3.12, the template's default.
LAMBDA_PYTHON ?= $(patsubst python%,%,$(or $(LAMBDA_RUNTIME),python3.12))
lambda-zip: $(STAMP)
	$(BIN)/python lambda/build_zip.py --python $(LAMBDA_PYTHON)

# Deploy the AWS stack (infra/template.yaml) with one `aws cloudformation deploy`; parameters
# from the environment (ARTIFACT_BUCKET, VPC_ID, SUBNET_ID, ...): see infra/README.md.
deploy: lambda-zip
	bash infra/deploy.sh

# The Spark scoring job's package for EMR Serverless (docs/spark-emr-serverless.md), built offline
# from the local venv into dist/spark/: emr_entrypoint.py, musicnft.zip (--py-files),
# pydeps.tar.gz (the libraries it imports, for spark.archives) and manifest.json. Upload the folder
# to s3://<ArtifactBucket>/<SparkArtifactsPrefix>/ (MUSICNFT_SPARK_ARTIFACTS_URI).
.PHONY: spark-package
spark-package: $(STAMP)
	$(BIN)/python infra/spark_package.py --out dist/spark

bench: $(STAMP) compiled browser
	$(BIN)/python -m benchmarks

# The chaos run (issues 12 and 19): CHAOS_POSTS posts (with the sample's re-deliveries and
# malformed lines; 3% of them deleted at the source before, during and after they arrive) replayed
# through the embedded profile while producer, delivery, consumer and the Dagster runs of the
# backfill are SIGKILLed CHAOS_KILLS times at random points, then (CHAOS_PROFILE=both)
# CHAOS_CLOUD_POSTS through the cloud profile on moto server and the BigQuery emulator with a 60 s
# Kinesis outage, throttling, a 60 s BigQuery outage and CHAOS_CLOUD_KILLS SIGKILLs; prints one
# table (README "Chaos run") and exits 1 when a post was lost, doubled or survived its deletion,
# a window was short, or a malformed line was not dead-lettered. Takes many minutes.
CHAOS_POSTS ?= 100000
CHAOS_KILLS ?= 24
CHAOS_SEED ?= 12
CHAOS_PROFILE ?= both
CHAOS_CLOUD_POSTS ?= 5000
CHAOS_CLOUD_KILLS ?= 4
chaos: $(STAMP) compiled
	$(BIN)/python -m musicnft.devtools.chaos --profile $(CHAOS_PROFILE) --posts $(CHAOS_POSTS) --kills $(CHAOS_KILLS) --seed $(CHAOS_SEED) --cloud-posts $(CHAOS_CLOUD_POSTS) --cloud-kills $(CHAOS_CLOUD_KILLS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output build musicnft/compiled_sources.json
	find musicnft -name '*.so' -delete -o -name '*.c' -delete
