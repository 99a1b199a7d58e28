# The README's two commands (`make demo`, `make test`) do all of their own set-up.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen

.PHONY: setup browser postgres demo test lint clean

# Environment: uv (installed once into ~/.local if missing; into the user's site also where the
# distribution marks its Python as externally managed), then the locked deps.
setup:
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || python3 -m pip install --user --quiet uv \
		|| python3 -m pip install --user --quiet --break-system-packages uv  # a distro Python (PEP 668)
	$(UV) sync --frozen

# Headless Chromium for the dashboard test (Debian's package; Playwright drives it).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL server binaries for the store tests (Debian's package; the tests start their own server).
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

demo: setup
	$(RUN) finpulse demo

# Two pytest-xdist workers, a test file each at a time: most of the suite waits on processes and the
# broker, so two share the two cores well (10 minutes instead of 14-15 here).
test: setup browser postgres
	$(RUN) pytest -n 2 --dist loadfile

lint: setup
	$(RUN) ruff format --check .
	$(RUN) ruff check .
	$(RUN) mypy
	$(RUN) lint-imports

clean:
	-$(RUN) finpulse kafka stop
	rm -rf .finpulse
