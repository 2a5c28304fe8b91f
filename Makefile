# monzo-auth. A newcomer needs two commands: `make run` and `make test`.
# Deploying to AWS: `make deploy`, then `make set-secret` (see the README).

CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
DEPLOY_VENV := .venv-deploy
FUNCTIONS := monzo-auth-new monzo-auth-callback monzo-auth-token

# `make build` uses plain cargo on x86_64 Linux (Lambda's platform; scripts/check-glibc makes sure
# the result runs on Lambda's glibc), zig elsewhere. `make deploy` lets cargo-lambda use zig,
# which .venv-deploy has.
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

.PHONY: run test build-all browser build deploy set-secret fmt lint clean

## run: the service on 127.0.0.1:3000; demo mode (a built-in stand-in for Monzo) unless
## MONZO_CLIENT_ID is set, in which case MONZO_CLIENT_SECRET must be set too.
run:
ifeq ($(strip $(MONZO_CLIENT_ID)),)
	$(CARGO) run --locked -p monzo-auth-server -- --demo
else
	$(CARGO) run --locked -p monzo-auth-server
endif

## test: the tools into .venv, lint, one debug build of everything, then every test with
## moto_server running.
test: $(VENV)/.installed browser lint build-all
	scripts/with-moto $(CARGO) test --workspace --locked --no-fail-fast

# One build of every target, so the tests that start the real binaries find them current and
# nothing is compiled twice with different features.
build-all:
	$(CARGO) build --workspace --all-targets --locked

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

tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## build: the three Lambda functions, release-built: target/lambda/<function>/bootstrap.
build: $(VENV)/.installed
	@if [ "$(BUILD_COMPILER)" = zig ]; then $(VENV)/bin/pip install --quiet ziglang; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CARGO_LAMBDA_COMPILER=$(BUILD_COMPILER) \
		$(CARGO) lambda build --release --locked $(foreach f,$(FUNCTIONS),--bin $(f))
	scripts/check-glibc $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap)

$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $@

## deploy: build with SAM and deploy; the first run asks its questions and saves them in
## samconfig.toml, later runs reuse them.
deploy: $(DEPLOY_VENV)/.installed
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" sam build
	@if [ -f samconfig.toml ]; then \
		PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" sam deploy; \
	else \
		admin=$$($(DEPLOY_VENV)/bin/python scripts/set_secret.py --print-caller-arn) && \
		PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" sam deploy --guided \
			--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
			--parameter-overrides KeyAdministratorArn=$$admin; \
	fi

## set-secret: asks for the Monzo client id and secret (the secret without echo), encrypts
## the secret with the stack's KMS key and updates the stack, in one go.
set-secret: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/python scripts/set_secret.py

fmt:
	$(CARGO) fmt --all

lint: $(VENV)/.installed
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps -p monzo-auth-client
	$(VENV)/bin/cfn-lint template.yaml
	@if [ -x $(DEPLOY_VENV)/bin/sam ]; then \
		PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" sam validate --lint; \
	elif command -v sam >/dev/null; then sam validate --lint; \
	else echo "(SAM CLI not installed: skipped sam validate --lint; make deploy installs it)"; fi

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(DEPLOY_VENV) .aws-sam tests/browser/node_modules artifacts
	rm -f monzo-auth.db monzo-auth.db-wal monzo-auth.db-shm
