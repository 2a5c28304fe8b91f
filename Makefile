# monzo-auth: the two commands a newcomer needs are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test build-all fmt lint clean

## run: the service on 127.0.0.1:3000; demo mode (a built-in stand-in for Monzo) unless
## MONZO_CLIENT_ID is set, in which case MONZO_CLIENT_SECRET must be set too.
run:
ifeq ($(strip $(MONZO_CLIENT_ID)),)
	$(CARGO) run --locked -p monzo-auth-server -- --demo
else
	$(CARGO) run --locked -p monzo-auth-server
endif

## test: lint, build everything once (debug), then run every test.
test: lint build-all
	$(CARGO) test --workspace --locked --no-fail-fast

# One build of every target, so the tests that start the real binaries find them current and
# nothing is compiled twice with different features.
build-all:
	$(CARGO) build --workspace --all-targets --locked

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

clean:
	$(CARGO) clean
	rm -f monzo-auth.db monzo-auth.db-wal monzo-auth.db-shm
