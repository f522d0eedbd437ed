#!/usr/bin/env bash
# Installs everything sidecar needs to build, test and benchmark, from Debian 12
# packages only. Idempotent: a second run installs nothing and takes seconds.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config clang lld libclang-rt-14-dev
  # libraries (DESIGN.md "Libraries")
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libnghttp2-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libre2-dev libgit2-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # real peers used by the tests and the benchmarks
  python3 curl wrk nghttp2-client procps iproute2 util-linux git openssh-server
  nginx-light haproxy caddy prometheus
  pebble  # a real ACME server (and pebble-challtestsrv, its DNS) for test_acme
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"

# Packages such as nginx and haproxy start a system service from their postinst;
# the tests and benchmarks start their own instances on 127.0.0.1 instead.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
cleanup() { [ "$created_policy" -eq 0 ] || $sudo rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || true
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
