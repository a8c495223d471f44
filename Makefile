# petrel — the two commands a fresh Debian 12 machine needs: `make serve` and `make test`.
# Everything else here is a step those two call.

BUILD_DIR   ?= build
BUILD_TYPE  ?= Release
CMAKE_FLAGS ?=
JOBS        ?= $(shell nproc)
# Debian packages the build and tests need. `make deps` installs only the missing ones.
DEB_PKGS := build-essential cmake ninja-build ccache pkg-config curl \
            libgtest-dev libgmock-dev libbenchmark-dev \
            libpcre2-dev libutf8proc-dev nlohmann-json3-dev libboost-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build build-cuda test test-unit serve e2e-deps clean format

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The CUDA backend too (nvcc + cuBLAS from /usr/local/cuda, sm_90), in its own build dir. Not
# part of `make test` or CI; its tests carry the label gpu (run them on a GPU machine with
# `cd build-cuda && ctest -L gpu`).
build-cuda:
	$(MAKE) build BUILD_DIR=build-cuda CMAKE_FLAGS="-DPETREL_CUDA=ON $(CMAKE_FLAGS)"

e2e-deps: deps
	@if [ -f tests/e2e/package.json ]; then \
	  cd tests/e2e && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; }; fi

# Every test except those that need a GPU (label gpu) — those run on the device machine.
test: build e2e-deps
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -LE gpu

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

# Serves the model bundled in the repo (tests/fixtures/qwen3-tiny) on 127.0.0.1:8000.
serve: build
	$(BUILD_DIR)/bin/petrel serve

format:
	find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
