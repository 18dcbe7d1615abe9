#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test libgrpchelper. Idempotent:
# nothing is installed twice, and nothing is done when everything is present.
set -euo pipefail

APT_PACKAGES=(libnghttp2-dev zlib1g-dev pkg-config cmake ninja-build nghttp2-client)
PIP_PACKAGES=(grpcio grpcio-tools pytest)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

py_missing=()
python3 -c "import grpc" 2>/dev/null || py_missing+=(grpcio)
python3 -c "import grpc_tools" 2>/dev/null || py_missing+=(grpcio-tools)
python3 -c "import pytest" 2>/dev/null || py_missing+=(pytest)
if ((${#py_missing[@]})); then
    echo "setup: pip installing ${py_missing[*]}"
    python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: the Swift toolchain is required (swift not on PATH)" >&2; exit 1; }
