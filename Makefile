# Entry points; the logic lives in scripts/.
FUZZ_SECONDS ?= 300

.PHONY: build release run test bench bench-hostile bench-tls fuzz conformance clean

build:
	scripts/install-deps.sh runtime
	swift build

release:
	scripts/install-deps.sh runtime
	swift build -c release

run:
	scripts/install-deps.sh runtime
	swift build -c release
	exec .build/release/bridge serve $(ARGS)

test:
	@scripts/test.sh

bench:
	scripts/install-deps.sh runtime
	bench/run.sh

# The hostile soak (about MINUTES + BASELINE_MINUTES + 1 minutes): not part of `make bench`.
MINUTES ?= 10
BASELINE_MINUTES ?= 2
bench-hostile:
	scripts/install-deps.sh runtime
	nice -n 10 bench/hostile.sh --minutes $(MINUTES) --baseline-minutes $(BASELINE_MINUTES) $(ARGS)

# Bridge vs nginx + nchan, each terminating TLS (about 5 minutes): not part of `make bench`.
bench-tls:
	scripts/install-deps.sh runtime
	bench/tls.sh $(ARGS)

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

conformance: build
	scripts/install-deps.sh test
	scripts/autobahn.sh full
	scripts/autobahn.sh full tls

clean:
	rm -rf .build .fuzz reports
