# qpk — the two commands of the README work on a fresh Debian machine:
#   make demo   installs what it needs, builds, converts the bundled model, inspects and validates it
#   make test   installs what it needs and runs every test (unit, CLI, interop, real-model checks)

SWIFT     ?= swift
PYTHON    ?= python3
QPK       := $(CURDIR)/.build/release/qpk
DEMO_DIR  := build/demo
DEMO_SRC  := fixtures/models/fracast/model.safetensors
APT_PKGS  := libhdf5-dev zlib1g-dev libopenblas-dev pkg-config chromium
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build release test unit-test interop-test report-test demo bench peft clean fixtures

all: build

# System libraries (Debian) and the Python reference implementations used by the tests.
deps: .build/.deps-ok
.build/.deps-ok: requirements-dev.txt python/pyproject.toml $(wildcard python/src/qpk/*.py)
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@$(PYTHON) -m pip --version >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-pip; }
	@$(PYTHON) -m pip install -q -r requirements-dev.txt pytest 2>&1 | grep -v -i "warning: running pip as" || true
	@$(PYTHON) -m pip install -q ./python 2>&1 | grep -v -i "warning: running pip as" || true
	@mkdir -p .build && touch $@

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product qpk

unit-test: deps release
	QPK_BIN=$(QPK) $(SWIFT) test

interop-test: deps release
	QPK_BIN=$(QPK) $(PYTHON) -m pytest -q tests/interop
	QPK_BIN=$(QPK) $(PYTHON) -m pytest -q python/tests examples/tests

# The HTML reports rendered by headless Chromium (spec/report.md): no console error, no request,
# and every figure equal to --json.
report-test: deps release
	QPK_BIN=$(QPK) $(PYTHON) -m pytest -q tests/report

test: unit-test interop-test report-test

demo: deps release
	@mkdir -p $(DEMO_DIR)
	@echo "\$$ qpk inspect $(DEMO_SRC) --stats"
	@$(QPK) inspect $(DEMO_SRC) --stats
	@echo; echo "\$$ qpk convert $(DEMO_SRC) $(DEMO_DIR)/fracast.qpk --bits 4 --group-size 64 --force"
	@$(QPK) convert $(DEMO_SRC) $(DEMO_DIR)/fracast.qpk --bits 4 --group-size 64 --force
	@echo; echo "\$$ qpk inspect $(DEMO_DIR)/fracast.qpk"
	@$(QPK) inspect $(DEMO_DIR)/fracast.qpk
	@echo; echo "\$$ qpk validate $(DEMO_SRC) $(DEMO_DIR)/fracast.qpk"
	@$(QPK) validate $(DEMO_SRC) $(DEMO_DIR)/fracast.qpk
	@echo; echo "\$$ qpk convert $(DEMO_DIR)/fracast.qpk $(DEMO_DIR)/restored.safetensors --dtype f32 --force"
	@$(QPK) convert $(DEMO_DIR)/fracast.qpk $(DEMO_DIR)/restored.safetensors --dtype f32 --force
	@echo; echo "\$$ qpk diff $(DEMO_SRC) $(DEMO_DIR)/restored.safetensors   # the quantization error, tensor by tensor"
	@$(QPK) diff $(DEMO_SRC) $(DEMO_DIR)/restored.safetensors; test $$? -le 1

fixtures: deps
	$(PYTHON) fixtures/generate.py

bench: deps release
	QPK=$(QPK) $(PYTHON) bench/quality/run.py
	QPK=$(QPK) $(PYTHON) bench/speed/run.py
	QPK=$(QPK) $(PYTHON) bench/metadata/run.py

# PreQuant outlier fine-tuning bench (bench/peft/RESULTS.md). Installs torch (CPU use, large
# download), which `make test` never needs.
peft: deps release
	$(PYTHON) -m pip install -q -r bench/peft/requirements.txt 2>&1 | grep -v -i "warning: running pip as" || true
	QPK=$(QPK) bash bench/peft/run.sh

clean:
	rm -rf .build build

# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of every reader; see Fuzz/README.md.
# The Fuzz package builds the readers again with sanitizer flags, in Fuzz/.build.
FUZZ_TARGETS       := safetensors sharded-index qpk hdf5 gguf
FUZZ_SECONDS       ?= 3600
FUZZ_SMOKE_SECONDS ?= 45

.PHONY: fuzz-build fuzz fuzz-smoke
fuzz-build: deps
	cd Fuzz && for p in FuzzSafetensors FuzzShardedIndex FuzzQPK FuzzHDF5 FuzzGGUF; do \
	  $(SWIFT) build -c release --toolset toolset.json --product $$p || exit 1; done

fuzz: fuzz-build release
	@status=0; for t in $(FUZZ_TARGETS); do Fuzz/run.sh $$t $(FUZZ_SECONDS) || status=1; done; exit $$status

fuzz-smoke: fuzz-build release
	@status=0; for t in $(FUZZ_TARGETS); do Fuzz/run.sh $$t $(FUZZ_SMOKE_SECONDS) || status=1; done; exit $$status
