# lwm2md: the two entry points are `make run` and `make test`.
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)

.PHONY: all deps build run test fuzz bench format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts the server with its defaults (NoSec 5685, DTLS 5686, data in ./data).
run: build
	./$(BUILD)/lwm2md serve

# Sanitizer build (ASan + UBSan) with clang, warnings as errors, libFuzzer
# targets; runs unit, integration and a short bounded fuzz pass of each target.
test: deps
	CC=clang cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DLWM2MD_SANITIZE=ON -DLWM2MD_WERROR=ON -DLWM2MD_FUZZ=ON \
	    -DLWM2MD_FUZZ_SECONDS=45 >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

# Longer fuzzing: FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 600
fuzz: deps
	CC=clang cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DLWM2MD_SANITIZE=ON -DLWM2MD_FUZZ=ON \
	    -DLWM2MD_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -R '^fuzz/'

bench: build
	@echo "benchmarks are in $(BUILD)/bench; see docs/BENCHMARKS.md"

format:
	clang-format -i src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c bench/*.c

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
