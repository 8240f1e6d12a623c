#!/usr/bin/env bash
# Installs the Debian 12 packages bitnet needs (idempotent; as root or via sudo) and builds
# the Release tree in build/. Options: --no-build (packages only), --werror (CI).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build git pkg-config
  libcli11-dev libfmt-dev libspdlog-dev libgtest-dev libbenchmark-dev libpcre2-dev
  nlohmann-json3-dev libcpp-httplib-dev libedit-dev
  clang libclang-rt-14-dev
  g++-aarch64-linux-gnu qemu-user-static
  python3 python3-numpy
)

build=1
werror=OFF
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --werror) werror=ON ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  echo "setup.sh: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((build)); then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBITNET_WERROR="$werror" >/dev/null
  cmake --build build -j"$(nproc)"
fi
