# auditgate — build, test and demo. Everything the tests need is installed
# into ./bin by these targets, at pinned versions.

GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)

export PATH := $(BIN):$(PATH)

.PHONY: all build test vet packages nginx demo bench bench-compare bench-micro fmt tidy clean

all: build

build: $(BIN)/auditgate

$(BIN)/auditgate: FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/auditgate

FORCE:

# Versity Gateway, the S3 server with Object Lock the integration tests
# start on loopback ports; pinned, built once into ./bin (about 2.5 minutes).
VERSITYGW_VERSION := v1.8.0

$(BIN)/versitygw:
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

# Debian packages some tests and the bench drive as their users would:
# the AWS CLI (an auditor's ordinary S3 client) and nginx (the plain reverse
# proxy the bench compares with). Installed when missing, as root or with
# sudo.
APT_INSTALL := sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$$@"' apt
SUDO        := $(shell test "$$(id -u)" = 0 || echo sudo)

packages:
	@aws --version >/dev/null 2>&1 || { echo "installing the AWS CLI (Debian awscli)"; $(SUDO) $(APT_INSTALL) awscli; }
	@$(MAKE) --no-print-directory nginx

nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
		{ echo "installing nginx (Debian nginx-light)"; $(SUDO) $(APT_INSTALL) nginx-light; }

# The README's test command: vet, then every test with the race detector.
test: vet $(BIN)/versitygw packages
	$(GO) test -race -count=1 ./...

vet:
	$(GO) mod download
	$(GO) vet ./...

# The README's first command: a mock model API, the gateway in front of it,
# traffic through it, a report; exits 0 only if every check held.
demo: build
	$(BIN)/auditgate demo

# The end-to-end harness: mock upstream, the gateway as a child process,
# open-loop load direct and through it at several rates (about a minute).
bench: build
	$(BIN)/auditgate bench --svg bench-latency.svg

# The same with nginx beside it, as a plain reverse proxy in front of the
# same mock (installed from Debian's packages when missing).
bench-compare: build nginx
	$(BIN)/auditgate bench --nginx auto --rates 500,1000,2000 --svg bench-latency.svg

# Go micro-benchmarks of the hot paths, with allocations.
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN)
