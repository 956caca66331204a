# Quick start: `make demo` and `make test`. Each creates .venv on first use.
# GPU users: install the CUDA build of torch first, e.g.
#   make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" install
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.judgekit-installed

.PHONY: install demo test clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev,embeddings]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/judgekit demo --out reports/demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n auto

# The report tests open report.html in headless Chromium (Debian package); without it they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
		echo "chromium is not installed and cannot be installed here: browser tests will be skipped"

clean:
	rm -rf reports .pytest_cache
