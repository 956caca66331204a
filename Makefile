# Quick start: `make demo` (core dependencies only) and `make test` (adds the test extras).
# Each creates .venv on first use; pip shows what it downloads.
# GPU users: install the CUDA build of torch first, e.g.
#   make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" install
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip
# one stamp per set of extras, so `make demo` never installs the test bench and `make test` adds only what it lacks
CORE_STAMP := $(VENV)/.judgekit-core
TEST_STAMP := $(VENV)/.judgekit-test
DOCS_STAMP := $(VENV)/.judgekit-docs

.PHONY: install install-test install-docs demo test docs docs-screenshot clean browser

install: $(CORE_STAMP)
install-test: $(TEST_STAMP)
install-docs: $(DOCS_STAMP)

$(CORE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "== installing torch ($(TORCH_SPEC)) and judgekit's core dependencies into $(VENV)"
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e .
	touch $@

$(TEST_STAMP): $(CORE_STAMP)
	@echo "== installing the test extras (inspect-ai, lm-eval, Ray, tokenizer packages, peft, Jupyter, mkdocs) into $(VENV)"
	$(PIP) install -e '.[dev,embeddings,docs]'
	touch $@

$(DOCS_STAMP): $(CORE_STAMP)
	$(PIP) install -e '.[docs]'
	touch $@

demo: $(CORE_STAMP)
	$(BIN)/judgekit demo --out reports/demo
	@echo
	@echo "Open the report: reports/demo/report.html"
	@echo "Run judgekit next: source $(VENV)/bin/activate && judgekit --help   (or $(BIN)/judgekit --help)"

# Byte-compiled once up front: with PYTHONDONTWRITEBYTECODE set (as on the CI machines) every test worker, CLI
# subprocess and Ray worker would otherwise compile judgekit again (a fresh clone's suite: 556 -> 502 s of CPU).
test: $(TEST_STAMP) browser
	$(BIN)/python -m compileall -q judgekit analyses > /dev/null
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The documentation site: docs/ -> site/ (offline; --strict turns every warning, e.g. a broken link, into a failure)
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

# The README's picture: the demo report's opening in headless Chromium, 64 colours (about 80 kB)
docs-screenshot: browser
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,820 \
		--screenshot=reports/report-opening-full.png file://$(CURDIR)/reports/demo/report.html
	$(BIN)/python -c "from PIL import Image; Image.open('reports/report-opening-full.png').convert('RGB')\
		.quantize(colors=64).save('docs/images/report-opening.png', optimize=True)"

# The report tests open report.html in headless Chromium (Debian package); without it they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
		echo "chromium is not installed and cannot be installed here: browser tests will be skipped"

clean:
	rm -rf reports site .pytest_cache
