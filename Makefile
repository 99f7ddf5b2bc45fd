# beatwatch: `make run` starts the daemon on ./inbox, `make test` runs the suite, `make lint` checks the code.
# All three work on a fresh Debian machine with Python 3.11, pip and apt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := ffmpeg fluidsynth fluid-soundfont-gm chromium chromium-driver postgresql
MODELS := models/msd-musicnn.pb models/mtt-musicnn.pb
TYPING := build/typing/beatwatch
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: install system-deps link run test lint bench bench-accuracy bench-queue bench-library clean

install: system-deps $(STAMP) $(MODELS)

# ffmpeg decodes every format; fluidsynth + the GM soundfont render the test and benchmark songs; chromium and
# chromium-driver open the interactive html plot in the browser tests; postgresql is the server the tests start a
# private cluster of (tests/postgres.py), never a system service they rely on.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# requirements.lock pins the runtime dependencies and the test extra (pytest, librosa, ruff, mypy ...), so beatwatch
# itself goes in with --no-deps. musicnn (the trained tag checkpoints) goes in without its metadata's numpy<1.17 pin,
# which the weights do not need.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps musicnn==0.1.0
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# The musicnn checkpoints frozen into Essentia graphs (offline); rebuilt only when the builder changes.
$(MODELS) &: analysis/nets/models_build.py analysis/nets/zoo.py | $(STAMP)
	$(BIN)/python -m beatwatch.analysis.nets.models_build --out models

# `beatwatch` on the PATH without activating the venv (README: commands assume it is there).
link: install
	mkdir -p $(HOME)/.local/bin
	ln -sfn $(CURDIR)/$(BIN)/beatwatch $(HOME)/.local/bin/beatwatch
	@echo "linked $(HOME)/.local/bin/beatwatch -> $(CURDIR)/$(BIN)/beatwatch"

run: install
	mkdir -p inbox
	$(BIN)/beatwatch run --config config.example.toml

test: install
	$(BIN)/python -m pytest -q

lint: install $(TYPING)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The installed names (beatwatch.daemon ...) as links to the folders, for mypy (see [tool.mypy] in pyproject.toml).
$(TYPING):
	mkdir -p $@
	for p in daemon analysis store render; do ln -sfn ../../../$$p $@/$$p; done

bench: install
	$(BIN)/python -m bench.speed

# The job queue alone: claim -> complete of 20,000 no-op jobs by 1, 4 and 16 claimers, SQLite vs PostgreSQL.
bench-queue: install
	$(BIN)/python -m bench.queue

# `rescan` of a generated library of 1,000,000 empty files, twice (all new, then nothing new): seconds and peak RSS.
bench-library: install
	$(BIN)/python -m bench.library

# ACCURACY_FLAGS passes options on, e.g. make bench-accuracy ACCURACY_FLAGS=--real-dev-only
bench-accuracy: install
	$(BIN)/python -m bench.accuracy $(ACCURACY_FLAGS)

clean:
	rm -rf $(VENV) .bench .pytest_cache .mypy_cache .ruff_cache build/typing
