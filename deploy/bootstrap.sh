#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine:
#   bash deploy/bootstrap.sh run    install what is missing, build, run the service (embedded PostgreSQL)
#   bash deploy/bootstrap.sh test   install what is missing (incl. test tools), run the whole test suite
# Extra arguments after `run` go to `netmonitor run` (e.g. --interface eth1).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"; shift || true

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

missing=()
have_pg_server() {
  command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}
have_pg_server || missing+=(postgresql)
[ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
if [ "$mode" = test ]; then
  # Every tool a test drives: capture readers and writers, the MCP Python SDK's interpreter,
  # network namespaces. A test that needs one of these fails under CI=true when it is missing.
  command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
  command -v tshark >/dev/null 2>&1 || missing+=(tshark)
  command -v capinfos >/dev/null 2>&1 || missing+=(wireshark-common)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # Attack tools and the servers they attack, for the behaviour tests.
  command -v nmap >/dev/null 2>&1 || missing+=(nmap)
  command -v hydra >/dev/null 2>&1 || missing+=(hydra)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v iodined >/dev/null 2>&1 || missing+=(iodine)
  command -v avahi-publish >/dev/null 2>&1 || missing+=(avahi-utils avahi-daemon)
  # nftables, for the SOAR block actions run inside a test's namespace.
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture; answer it (no) up front.
  echo "wireshark-common wireshark-common/install-setuid boolean false" \
    | $sudo_cmd debconf-set-selections 2>/dev/null || true
  # Test servers (sshd, iodined, avahi) are started by the tests inside their own namespaces;
  # installing them must not start them on the host.
  no_start=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    no_start=1
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_cmd chmod 755 /usr/sbin/policy-rc.d
  fi
  status=0
  { $sudo_cmd apt-get update -qq \
    && $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || status=$?
  [ -z "$no_start" ] || $sudo_cmd rm -f /usr/sbin/policy-rc.d
  [ "$status" -eq 0 ] || exit "$status"
fi
# The HyperLogLog extension the TLS rollup's distinct counts use, for the server's major version
# (known only once the server is installed, above).
pg_major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
if [ -n "$pg_major" ] && [ ! -f "/usr/share/postgresql/$pg_major/extension/hll.control" ]; then
  echo "bootstrap: installing postgresql-$pg_major-hll" >&2
  { $sudo_cmd apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
      "postgresql-$pg_major-hll" >/dev/null; } || exit $?
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo not found; install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi

case "$mode" in
  run)
    cargo build --release --bin netmonitor
    exec target/release/netmonitor run "$@"
    ;;
  test)
    # The official MCP Python SDK is the independent client the interop tests drive; medallion
    # (the OASIS TAXII 2.1 reference server) serves the threat-feed tests.
    pip_install() {
      python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
    }
    python3 -c 'import mcp' >/dev/null 2>&1 || pip_install mcp
    command -v medallion >/dev/null 2>&1 || python3 -c 'import medallion' >/dev/null 2>&1 || pip_install medallion
    cargo test --workspace --no-fail-fast "$@"
    ;;
  *)
    echo "usage: bash deploy/bootstrap.sh run|test [args...]" >&2
    exit 2
    ;;
esac
