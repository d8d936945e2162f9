# The two commands: `make book` builds the whole book, `make test` runs every test.
# Both create the virtual environment on first use and reinstall when requirements change.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: book test notebooks pdf clean distclean env browser tex lint format lock

book: $(STAMP)
	$(BIN)/python -m dgm.book.build build .

# The notebook edition (Colab, Binder): every chapter as a plain .ipynb in _build/notebooks, quoting
# the numbers of the build that `make book` made (it builds first; nothing re-executes when cached),
# and the homework edition in _build/homework: the chapters with homework, solutions taken out.
REF ?= $(shell git rev-parse HEAD 2>/dev/null || echo main)
notebooks: book
	rm -rf _build/notebooks.tmp _build/homework.tmp
	$(BIN)/python -m dgm.book.edition . _build/notebooks.tmp --build _build --ref $(REF)
	$(BIN)/python -m dgm.book.edition . _build/homework.tmp --build _build --ref $(REF) --homework
	rm -rf _build/notebooks && mv _build/notebooks.tmp _build/notebooks
	rm -rf _build/homework && mv _build/homework.tmp _build/homework

# The PDF edition: the whole book as one PDF, _build/latex/book.pdf, from Jupyter Book's LaTeX builder
# with xelatex (the execution cache of `make book` is reused: nothing re-executes when it is fresh).
pdf: $(STAMP) tex
	$(BIN)/python -m dgm.book.build build . --builder pdflatex

test: $(STAMP) browser tex lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (configured in pyproject.toml): `make test` runs it first; `make format` rewrites the code.
LINTED := src tests benchmarks
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

env: $(STAMP)

# The browser test (tests/test_site.py) drives Debian's Chromium, never a browser download, and
# gets its offline MathJax with npm: apt-get installs whichever is missing (as root or via sudo).
CHROMIUM := /usr/bin/chromium
browser:
	@missing=""; test -x $(CHROMIUM) || missing="chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "make browser: apt-get install $$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The PDF edition needs Debian's TeX Live (xelatex, latexmk, the LaTeX packages Sphinx uses, FreeFont)
# and poppler's pdftotext for its test: apt-get installs whichever is missing (as root or via sudo).
TEX_PACKAGES := latexmk texlive-latex-extra texlive-xetex texlive-fonts-recommended fonts-freefont-otf poppler-utils
tex:
	@missing=""; for p in $(TEX_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make tex: apt-get install$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The environment is the lock (requirements.lock: every package at an exact version), then the
# book's package, editable, without dependencies. requirements.txt declares; `make lock` resolves it.
$(STAMP): requirements.lock requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Re-resolve requirements.txt in a fresh environment and write requirements.lock and
# binder/requirements.txt from it (review the diff: that is the upgrade).
LOCK_ENV := .cache/lock-env
lock:
	rm -rf $(LOCK_ENV)
	$(PYTHON) -m venv $(LOCK_ENV)
	$(LOCK_ENV)/bin/python -m pip install --upgrade --quiet pip
	$(LOCK_ENV)/bin/python -m pip install --quiet -r requirements.txt
	$(LOCK_ENV)/bin/python -m dgm.book.lock $(LOCK_ENV)/bin/python --root .
	rm -rf $(LOCK_ENV)

clean:
	rm -rf _build test-output .pytest_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .cache
