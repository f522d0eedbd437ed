# The two commands of the README's quick start, and the developer targets.
#   make demo   install dependencies, build, run the sidecar in front of the demo app
#   make test   install dependencies, build, run the whole ctest suite
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
LOGS_FUZZ_SECONDS ?= 10
HTTP2_FUZZ_SECONDS ?= 30
LOGS_FUZZ = json logfmt syslog cri
CMAKE_FLAGS ?=

.PHONY: all deps build test demo asan fuzz fuzz-acme fuzz-registry fuzz-jwt fuzz-tracing bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 2

demo: build
	@bash scripts/demo.sh $(BUILD)/sidecar

# The suite again, built with AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIDECAR_SANITIZE=address,undefined $(CMAKE_FLAGS)
	ninja -C build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/test/lsan.supp ctest --output-on-failure -j 2

# Coverage-guided fuzzing of the HTTP/1.1 codec (clang, libFuzzer) for
# FUZZ_SECONDS, starting from the seed corpus; new inputs go to build-fuzz/corpus.
# Then the HTTP/2 downstream codec for HTTP2_FUZZ_SECONDS and each log parser
# for LOGS_FUZZ_SECONDS.
fuzz: deps
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIDECAR_FUZZ=ON -DSIDECAR_SANITIZE=address,undefined $(CMAKE_FLAGS)
	ninja -C build-fuzz fuzz_http1 fuzz_http2 fuzz_hash_policy $(addprefix fuzz_logs_,$(LOGS_FUZZ))
	mkdir -p build-fuzz/corpus build-fuzz/corpus-hash-policy build-fuzz/corpus-http2
	build-fuzz/test/fuzz_http1 -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/ build-fuzz/corpus test/fuzz/corpus/http1
	build-fuzz/test/fuzz_http2 -max_total_time=$(HTTP2_FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/http2- build-fuzz/corpus-http2 test/fuzz/corpus/http2
	build-fuzz/test/fuzz_hash_policy -max_total_time=$(LOGS_FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/hash-policy- build-fuzz/corpus-hash-policy \
	  test/fuzz/corpus/hash_policy
	for p in $(LOGS_FUZZ); do \
	  mkdir -p build-fuzz/corpus-logs-$$p && \
	  build-fuzz/test/fuzz_logs_$$p -max_total_time=$(LOGS_FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/logs-$$p- build-fuzz/corpus-logs-$$p \
	    test/fuzz/corpus/logs_$$p || exit 1; \
	done

# The same for what sidecar reads from an ACME server (JSON objects,
# Retry-After, PEM chains, base64url).
fuzz-acme: deps
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIDECAR_FUZZ=ON -DSIDECAR_SANITIZE=address,undefined $(CMAKE_FLAGS)
	ninja -C build-fuzz fuzz_acme
	mkdir -p build-fuzz/corpus-acme
	build-fuzz/test/fuzz_acme -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/ build-fuzz/corpus-acme test/fuzz/corpus/acme

# The same for what sidecar reads from etcd's JSON gateway (registry).
fuzz-registry: deps
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIDECAR_FUZZ=ON -DSIDECAR_SANITIZE=address,undefined $(CMAKE_FLAGS)
	ninja -C build-fuzz fuzz_registry
	mkdir -p build-fuzz/corpus-registry
	build-fuzz/test/fuzz_registry -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/ build-fuzz/corpus-registry test/fuzz/corpus/registry

# The same for jwt_authn's token and JWKS parsers.
fuzz-jwt: deps
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIDECAR_FUZZ=ON -DSIDECAR_SANITIZE=address,undefined $(CMAKE_FLAGS)
	ninja -C build-fuzz fuzz_jwt
	mkdir -p build-fuzz/corpus-jwt
	build-fuzz/test/fuzz_jwt -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/jwt- build-fuzz/corpus-jwt test/fuzz/corpus/jwt

# The same for the trace context headers (traceparent, b3, x-b3-*).
fuzz-tracing: deps
	CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSIDECAR_FUZZ=ON -DSIDECAR_SANITIZE=address,undefined $(CMAKE_FLAGS)
	ninja -C build-fuzz fuzz_trace_context
	mkdir -p build-fuzz/corpus-trace-context
	build-fuzz/test/fuzz_trace_context -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/ build-fuzz/corpus-trace-context test/fuzz/corpus/trace_context

bench: build
	bash bench/proxy.sh $(BUILD)/sidecar

format:
	clang-format --dry-run -Werror $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
