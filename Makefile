# monzo-auth. A newcomer needs two commands: `make run` and `make test`.
# Deploying to AWS: `make deploy`, then `make set-secret` (see the README); `make destroy`.

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
DEPLOY_VENV := .venv-deploy
FUNCTIONS := monzo-auth-new monzo-auth-callback monzo-auth-token

# `make build` uses plain cargo on x86_64 Linux (Lambda's platform; scripts/check-glibc makes sure
# the result runs on Lambda's glibc), zig (installed into .venv) elsewhere.
ifeq ($(shell uname -sm),Linux x86_64)
BUILD_COMPILER ?= cargo
else
BUILD_COMPILER ?= zig
endif
# SAM must not phone home.
export SAM_CLI_TELEMETRY := 0

# The browser tests drive Debian's Chromium (installed when missing) with npm's playwright-core.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint-then-test test-tools rust-tests deploy-tests build-all browser keyring wheel \
	wheel-build wheel-test wheel-check build bench bench-lambda deploy set-secret destroy fmt lint lint-rust lint-template clean \
	build-NewFunction build-CallbackFunction build-TokenFunction

## run: the service on 127.0.0.1:3000; demo mode (a built-in stand-in for Monzo) unless
## MONZO_CLIENT_ID is set, in which case MONZO_CLIENT_SECRET must be set too.
run:
	@# The whole workspace, as `make test` builds it: after a test run nothing is compiled again
	@# (building the server alone resolves other features and compiles ~50 crates a second time).
	$(CARGO) build --workspace --all-targets --locked
ifeq ($(strip $(MONZO_CLIENT_ID)),)
	$${CARGO_TARGET_DIR:-target}/debug/monzo-auth-server --demo
else
	$${CARGO_TARGET_DIR:-target}/debug/monzo-auth-server
endif

## test: the tools into .venv (and the SAM CLI into .venv-deploy, for the deploy tests) while one
## debug build of everything runs, lint, then every test in tiers, fastest first.
test:
	@# The tools wait on the network and the disk, the build on the CPU: side by side.
	$(MAKE) --no-print-directory -j4 --output-sync=line test-tools build-all
	@# The deploy path (Python and the SAM CLI against its own moto, the longest part) beside
	@# everything after the build; each one's output is shown when it is done.
	$(MAKE) --no-print-directory -j2 --output-sync=target deploy-tests lint-then-test

lint-then-test:
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory wheel-build
	$(MAKE) --no-print-directory -j2 --output-sync=target rust-tests wheel-check

test-tools: $(VENV)/.installed $(DEPLOY_VENV)/.test-installed browser keyring

# Every crate's own integration tests (tests/*.rs: the flow, the stores, the client, fake-monzo),
# named for `cargo test --test`: all Rust tiers select the whole workspace, as build-all does, so
# cargo resolves the dependencies' features once and compiles nothing again (selecting fewer
# packages would build many crates a second time, with other features).
CRATE_TESTS := $(sort $(basename $(notdir $(wildcard */tests/*.rs */*/tests/*.rs))))

# The Rust tests in tiers: every crate's own (the domain: the flow on a manual clock, the memory
# store; the stores' conformance and the SQLite writer; the client, fake-monzo, the adapters;
# seconds), then the service in process over loopback, the real binaries, and the AWS shape (the
# Lambda functions under cargo lambda, DynamoDB and KMS) on moto.
rust-tests: build-all
	$(CARGO) test --workspace --locked --no-fail-fast --lib --bins $(foreach t,$(CRATE_TESTS),--test $(t))
	$(CARGO) test --workspace --locked --no-fail-fast --doc
	$(CARGO) test --workspace --locked --no-fail-fast --test service
	$(CARGO) test --workspace --locked --no-fail-fast --test binaries
	scripts/with-moto $(CARGO) test --workspace --locked --no-fail-fast --test cloud

# The deploy path: `make deploy`, `set-secret` and `destroy` for real against moto (pytest).
deploy-tests: $(VENV)/.installed $(DEPLOY_VENV)/.test-installed
	scripts/with-moto $(DEPLOY_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/deploy

# The pip package: the release wheel in dist/ (Linux x86_64 here; python/README.md says how the
# other platforms are built).
wheel: $(VENV)/.installed
	$(VENV)/bin/maturin build --release --locked --out dist

# The wheel as a person gets it: built from build-all's debug build of the client (anything
# compiled here would be another build of the tree, which fails the test), installed into a fresh
# virtualenv outside the source tree, checked (twine, mypy --strict) and run against this build's
# server. (Built first, on its own: a cargo test run holds the build directory's lock.)
WHEEL_VENV ?= $(or $(TMPDIR),/tmp)/monzo-auth-wheel-test
wheel-build: $(VENV)/.installed build-all
	rm -rf target/wheels
	$(VENV)/bin/maturin build --profile dev --locked --out target/wheels 2>&1 | tee target/wheel-build.log
	@! grep -q "Compiling " target/wheel-build.log || { echo "maturin compiled crates again: its build differs from build-all's"; exit 1; }

wheel-test: wheel-build
	$(MAKE) --no-print-directory wheel-check

wheel-check:
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-wheel-test.txt
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps target/wheels/monzo_auth-*.whl
	$(WHEEL_VENV)/bin/twine check --strict target/wheels/monzo_auth-*.whl
	cd $(WHEEL_VENV) && bin/mypy --strict --no-incremental -p monzo_auth
	cd $(WHEEL_VENV) && MONZO_AUTH_SERVER=$(CURDIR)/target/debug/monzo-auth-server \
		FAKE_MONZO=$(CURDIR)/target/debug/fake-monzo \
		bin/python -m pytest -q -p no:cacheprovider $(CURDIR)/tests/wheel

# One build of every target, so the tests that start the real binaries find them current and
# nothing is compiled twice with different features.
build-all:
	$(CARGO) build --workspace --all-targets --locked
	@# The wheel's build: the client alone. Cargo resolves features per selection, so the client's
	@# dependencies get a feature set of their own (about 30 s more here) until its
	@# feature-unification setting is stable; built here once, maturin then compiles nothing.
	$(CARGO) build --locked -p monzo-auth-client --bin monzo-auth

$(VENV)/.installed: requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps cargo-lambda==1.9.2
	touch $@

browser: tests/browser/node_modules/.installed
	@[ -x "$(CHROMIUM)" ] || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The CLI's keyring test runs a real Secret Service on a private session bus; the Lambda TLS test
# makes its CA with openssl. After `browser`: two apt-gets at once would fight over dpkg's lock.
keyring: | browser
	@[ -x /usr/bin/gnome-keyring-daemon ] && [ -x /usr/bin/dbus-run-session ] && [ -x /usr/bin/openssl ] || { \
		echo "installing Debian's gnome-keyring, dbus and openssl for the keyring and TLS tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			gnome-keyring dbus-daemon dbus-bin openssl >/dev/null; }

tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## build: the three Lambda functions, release-built: target/lambda/<function>/bootstrap.
build: $(VENV)/.installed
	@if [ "$(BUILD_COMPILER)" = zig ]; then $(VENV)/bin/pip install --quiet ziglang; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_LAMBDA_COMPILER=$(BUILD_COMPILER) \
		$(CARGO) lambda build --release --locked $(foreach f,$(FUNCTIONS),--bin $(f))
	scripts/check-glibc $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap)

## bench: the release server on a fresh SQLite store on this disk with the demo's stand-in:
## fsync latency, then req/s, p50/p99 and RSS per path and complete logins a second (~2 minutes).
bench:
	@command -v wrk >/dev/null || { \
		echo "installing Debian's wrk for the benchmarks"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	$(CARGO) build --release --locked -p monzo-auth-server -p monzo-auth-bench
	$(PYTHON) scripts/bench.py

## bench-lambda: the three functions' cold requests as Lambda runs them at 128 MB (7.2 % of a CPU;
## DynamoDB and KMS on moto over TLS) beside a bare lambda_http floor built alike: init, first
## request, CPU and peak RSS, medians of RUNS=10 fresh processes per function and CPU mode (MODES=
## "full invoke all"; MEMORY=256 for another size's CPU share). Needs root (sudo otherwise): a
## cgroup CPU quota, a private mount namespace.
bench-lambda: build
	@# The floor (bench/lambda-floor) is built here only, as `build` builds the functions.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_LAMBDA_COMPILER=$(BUILD_COMPILER) \
		$(CARGO) lambda build --release --locked --bin lambda-floor
	$(SUDO) $(VENV)/bin/python scripts/bench-lambda.py $(if $(RUNS),--runs $(RUNS)) $(if $(MODES),--modes "$(MODES)") \
		$(if $(MEMORY),--memory $(MEMORY))

$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { \
		echo "the deploy tools need Python 3.10 or newer; $(PYTHON) is older (try PYTHON=python3.12)" >&2; exit 1; }
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $@

# What the deploy tests (tests/deploy, pytest) add to the deploy virtualenv.
$(DEPLOY_VENV)/.test-installed: $(DEPLOY_VENV)/.installed requirements-deploy-test.txt
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy-test.txt
	touch $@

# The settings `make deploy` takes as make variables (see the README). Only those given on make's
# command line are passed on (by name; scripts/deploy.py reads the values from the environment),
# so one left out keeps its previous value and `NAME=` clears it.
DEPLOY_SETTINGS := STACK REGION ALLOWED_USER_IDS RETURN_URL CUSTOM_DOMAIN CUSTOM_DOMAIN_CERTIFICATE \
	THROTTLE_RATE THROTTLE_BURST LOG_LEVEL LOG_RETENTION_DAYS ALARM_EMAIL KEY_ADMINISTRATOR CLIENT_ID
DEPLOY_GIVEN = $(strip $(foreach v,$(DEPLOY_SETTINGS),$(if $(filter command line,$(origin $(v))),--given $(v))))
DEPLOY_PY = $(DEPLOY_VENV)/bin/python scripts/deploy.py

## deploy: build (unless NO_BUILD=1), write samconfig.toml, `sam build` (a copy of that build)
## and `sam deploy`, asking nothing. Prints the redirect URL to register at Monzo.
deploy: $(DEPLOY_VENV)/.installed $(if $(NO_BUILD),,build)
	$(DEPLOY_PY) deploy $(DEPLOY_GIVEN)

## set-secret: asks for the Monzo client id and secret (the secret without echo, or from a pipe),
## encrypts the secret with the stack's KMS key and updates the stack, in one go.
set-secret: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) set-secret $(DEPLOY_GIVEN)

## destroy: deletes the stack without prompts; its KMS key is scheduled for deletion.
destroy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) destroy $(DEPLOY_GIVEN)

# `sam build` (BuildMethod: makefile in template.yaml) runs these, in the source tree
# (build_in_source in samconfig.toml): each copies what `make build` built, so what was checked
# against Lambda's glibc is what ships.
build-NewFunction: BINARY = monzo-auth-new
build-CallbackFunction: BINARY = monzo-auth-callback
build-TokenFunction: BINARY = monzo-auth-token
build-NewFunction build-CallbackFunction build-TokenFunction:
	@[ -f target/lambda/$(BINARY)/bootstrap ] || { \
		echo "target/lambda/$(BINARY)/bootstrap is missing: run make build first (make deploy does)" >&2; exit 1; }
	cp target/lambda/$(BINARY)/bootstrap "$(ARTIFACTS_DIR)/bootstrap"

fmt:
	$(CARGO) fmt --all

lint: lint-rust lint-template

# One check of the whole workspace, the server's `aws` feature on (its code is the only code
# behind a feature), and one of its docs: selecting the workspace every time resolves the
# dependencies' features once, so neither checks a dependency again. (Beside the build, in a
# target directory of their own, they took longer: the CPU is the limit, and the C parts of
# aws-lc and SQLite were built twice.)
lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --features monzo-auth-server/aws --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

lint-template: $(VENV)/.installed $(DEPLOY_VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" sam validate --lint --region eu-west-2

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(DEPLOY_VENV) .aws-sam tests/browser/node_modules artifacts
	rm -f monzo-auth.db monzo-auth.db-wal monzo-auth.db-shm
