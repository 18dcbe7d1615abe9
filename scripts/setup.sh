#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test libgrpchelper. Idempotent:
# nothing is installed twice, and nothing is done when everything is present.
set -euo pipefail

APT_PACKAGES=(libnghttp2-dev zlib1g-dev pkg-config cmake ninja-build nghttp2-client)
# python3 and pip only when the machine has none (an image may bring its own Python).
command -v python3 >/dev/null || APT_PACKAGES+=(python3)
python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)

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
# The standard services' own clients and servicers, in the tests.
python3 -c "import grpc_health.v1.health" 2>/dev/null || py_missing+=(grpcio-health-checking)
python3 -c "import grpc_reflection.v1alpha.reflection" 2>/dev/null || py_missing+=(grpcio-reflection)
# The Python binding's packaging test builds its wheel without build isolation.
python3 -c "import setuptools" 2>/dev/null || py_missing+=(setuptools)
if ((${#py_missing[@]})); then
    echo "setup: pip installing ${py_missing[*]}"
    # Debian's own python3 refuses pip installs (PEP 668) unless told otherwise.
    python3 -m pip install -q --disable-pip-version-check "${py_missing[@]}" 2>/dev/null ||
        python3 -m pip install -q --disable-pip-version-check --break-system-packages "${py_missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: the Swift toolchain is required (swift not on PATH)" >&2; exit 1; }
