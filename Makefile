# Tessera: `make demo` and `make test` set everything up on first use (a .venv with a torch/torchvision pair that
# imports together, installed before the project and constrained), then run.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tessera-installed
export NO_ALBUMENTATIONS_UPDATE := 1
export TESSERA_CACHE ?= $(CURDIR)/.cache/tessera
export RAY_TMPDIR ?= $(CURDIR)/.cache/ray
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup browser demo test ui bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/tessera demo --out demo_out

# The browser test drives Debian's chromium with Playwright (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed (needs root): the browser test will be skipped"

test: setup browser
	$(BIN)/python -m pytest -q

ui: setup
	mkdir -p data/incoming .dagster_home
	ln -sf ../dagster.yaml .dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(BIN)/dagster dev -m assets.definitions

# Every bench script, in name order; each ends with one JSON line of its figures (BENCHMARKS.md).
bench: setup
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf demo_out .dagster_home .cache/ray
