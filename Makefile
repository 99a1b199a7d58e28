# The README's two commands (`make demo`, `make test`) do all of their own set-up.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen

.PHONY: setup java browser postgres demo test lint clean

# Environment: uv (installed once into ~/.local if missing; into the user's site also where the
# distribution marks its Python as externally managed), then the locked deps.
# Without pip (Debian's python3 has none until python3-pip is installed) it says so and stops.
setup:
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || { \
		python3 -m pip --version >/dev/null 2>&1 || { \
			echo "make: uv is missing and python3 has no pip to install it: install pip (apt-get install python3-pip) or uv (https://docs.astral.sh/uv/)" >&2; exit 1; }; \
		python3 -m pip install --user --quiet uv \
		|| python3 -m pip install --user --quiet --break-system-packages uv; }  # a distro Python (PEP 668)
	$(UV) sync --frozen

# The local Kafka broker (demo, tests) runs on Java 17+, and Maven fetches its jars once: both are
# checked before anything is downloaded (Maven only while the default jar cache is empty).
JARS_FETCHED := $(wildcard $(HOME)/.cache/finpulse/kafka-jars/*/.complete)
java:
	@command -v java >/dev/null 2>&1 || { echo "make: java not found: install Java 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@$(if $(JARS_FETCHED),true,command -v mvn >/dev/null 2>&1 || { echo "make: mvn not found: install Maven, which fetches the Kafka jars once (apt-get install maven)" >&2; exit 1; })

# Headless Chromium for the dashboard test (Debian's package; Playwright drives it). The test takes
# the first of these names on PATH, else /usr/bin/chromium.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| command -v google-chrome >/dev/null 2>&1 || test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL server binaries for the store tests (Debian's package; the tests start their own server).
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

demo: java setup
	$(RUN) finpulse demo

# Two pytest-xdist workers, a test file each at a time: most of the suite waits on processes and the
# broker, so two share the two cores well (10 minutes instead of 14-15 here).
test: java setup browser postgres
	$(RUN) pytest -n 2 --dist loadfile

lint: setup
	$(RUN) ruff format --check .
	$(RUN) ruff check .
	$(RUN) mypy
	$(RUN) lint-imports

clean:
	-$(RUN) finpulse kafka stop
	rm -rf .finpulse
