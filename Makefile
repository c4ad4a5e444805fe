# Quick start: `make demo` (venv, install, a real search on digits) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NASPRUNE := $(BIN)/nasprune
DEMO_LATENCY_MS ?= 0.1

.PHONY: install install-peers demo test test-slow test-all lint typecheck bench bench-trust bench-quality bench-quality-quick bench-quant bench-methods bench-latency bench-resume bench-workers bench-scale bench-byom bench-page clean

install: $(VENV)/.installed

# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(NASPRUNE) run examples/mlp-digits.yaml --resume-if-exists
	$(NASPRUNE) best digits-mlp --max-latency-ms $(DEMO_LATENCY_MS)

# PostgreSQL and Chromium are installed with apt-get where missing (.ci/test-deps), so the
# whole suite runs, the store tests on PostgreSQL and the web page's in a real browser.
test: install
	bash .ci/test-deps
	$(BIN)/pytest -q

test-slow: install
	bash .ci/test-deps
	$(BIN)/pytest -q -m slow

test-all: install
	bash .ci/test-deps
	$(BIN)/pytest -q -m ''

# ruff, and the import contracts of pyproject.toml's [tool.importlinter] (the rooms' arrows, the
# facade imported by the command line only)
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy nasprune search_spaces strategies storage plumbing

bench: install
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_queries.py
	$(BIN)/python benchmarks/bench_latency.py
	$(BIN)/python benchmarks/bench_resume.py
	$(BIN)/python benchmarks/bench_workers.py --postgres

# The web page in Debian's Chromium on searches of 1,000 to 100,000 trials (about 2 minutes).
bench-page: install
	$(BIN)/python benchmarks/bench_page.py

# Supernet training time, the whole path and the ranking (Kendall tau, K = 16) on MNIST-1D and
# OSULeaf, for builtin.mlp and a derived residual CNN (about 30 minutes on 2 cores).
bench-trust: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_trust.py

bench-quality: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_quality.py --plot docs/bench_quality.png

# int8 chosen with the channels against int8 after pruning, on ONNX Runtime (issue 17).
bench-quant: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_quant.py

# The pruning methods users know by name: criteria, RigL/SET, lottery tickets (issue 18).
bench-methods: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_methods.py

# The quality benchmark's CI subset (--quick: MNIST-1D, one seed, 12 trials, four strategies,
# Torch-Pruning's peers, every step of the full run; about 4 minutes in CI, the bench extra's
# install and the dense model's training included): it keeps the benchmark
# running; its figures are not the README's.
bench-quality-quick: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_quality.py --quick

# The quality benchmark's optional peer, NVIDIA Model Optimizer's FastNAS (benchmarks/peers/).
# torchprofile 0.0.4 goes in without its dependencies: the torchvision it declares is a CUDA
# build on PyPI, which fails to load beside the CPU torch and breaks what imports it.
install-peers: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[peers]'
	$(BIN)/pip install --quiet -c constraints.txt --no-deps torchprofile==0.0.4

bench-latency: install
	$(BIN)/python benchmarks/bench_latency.py

bench-resume: install
	$(BIN)/python benchmarks/bench_resume.py

bench-workers: install
	$(BIN)/python benchmarks/bench_workers.py --postgres

# Bring your own model: trains examples/byom/digits_resnet.py once (cached), then compares
# nasprune with torch-pruning's uniform pruning (about 15 minutes on 2 cores).
bench-byom: install
	$(BIN)/python benchmarks/bench_byom.py

# Queries on 100,000 trials, SQLite and a throwaway PostgreSQL, beside Optuna (about 12 minutes).
bench-scale: install
	$(BIN)/python benchmarks/bench_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
