# The two commands. Both need only Python 3.11+: the first use creates .venv and installs the
# project into it; later uses reinstall only when pyproject.toml has changed.
#   make run   web + worker + beat on this machine, with the demo jobs (SQLite and an embedded
#              Redis by default)
#   make test  ruff, the import contracts, mypy and the whole test suite
# `make run PORT=8001 HOST=0.0.0.0` serves elsewhere; PYTHON=python3.12 picks the interpreter.

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
INSTALLED := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: run test install browser messages

# With the demo and worked examples (BATCHJOBS_EXAMPLES), which a production install leaves out;
# `BATCHJOBS_EXAMPLES=false make run` runs without them.
run: $(INSTALLED)
	BATCHJOBS_EXAMPLES=$${BATCHJOBS_EXAMPLES:-true} $(VENV)/bin/python manage.py quickstart --host $(HOST) --port $(PORT)

test: $(INSTALLED) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

# The admin's browser tests drive Debian's Chromium (Playwright never downloads a browser):
# installed here when we may (root with apt-get); otherwise those tests say what is missing.
browser:
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		>/dev/null; } || echo "make: $(CHROMIUM) is missing; the browser tests will fail" >&2

install: $(INSTALLED)

# After marking or changing strings (needs GNU gettext, as Django's makemessages does): refresh
# the Korean catalogue, translate its new entries, then `make messages` again to compile it.
# The compiled .mo is committed, so a fresh machine needs no gettext.
CATALOGUE := locale/ko/LC_MESSAGES/django
messages: $(INSTALLED)
	$(VENV)/bin/python manage.py makemessages --locale ko --no-obsolete --no-location \
		--ignore 'batchjobs_examples/*' --ignore 'tests/*' --ignore 'bench/*' --ignore 'var/*' \
		--ignore 'docs/*'
	msgfmt --check --output-file $(CATALOGUE).mo $(CATALOGUE).po

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "batchjobs needs Python 3.11 or newer: make PYTHON=python3.11 ..." >&2; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@
