#!/bin/sh
# Install-consumer test (registered with ctest as c.install_consumer).
#
#   install_consumer_test.sh CMAKE BUILD_DIR TESTS_SRC_DIR CC LIBDIR INCLUDEDIR
#                            GENERATOR MAKE_PROGRAM PKG_CONFIG WORK_DIR
#
# 1. cmake --install BUILD_DIR --prefix WORK_DIR/prefix
# 2. checks the installed layout: LIBDIR/libgrpchelper.so.1 (file),
#    LIBDIR/libgrpchelper.so -> libgrpchelper.so.1, INCLUDEDIR/grpchelper.h,
#    LIBDIR/pkgconfig/grpchelper.pc, LIBDIR/cmake/grpchelper/*.cmake
# 3. cc consumer.c $(pkg-config --cflags --libs grpchelper), run it
# 4. a CMake project with find_package(grpchelper), build it, run it
# Programs run with LD_LIBRARY_PATH unset. Exit 77 = skipped.
set -eu

if [ $# -ne 10 ]; then
    echo "usage: $0 CMAKE BUILD_DIR TESTS_SRC_DIR CC LIBDIR INCLUDEDIR GENERATOR MAKE_PROGRAM PKG_CONFIG WORK_DIR" >&2
    exit 2
fi
CMAKE=$1
BUILD_DIR=$2
SRC_DIR=$3
CC=$4
LIBDIR=$5
INCLUDEDIR=$6
GENERATOR=$7
MAKE_PROGRAM=$8
PKG_CONFIG=$9
shift 9
WORK=$1

unset LD_LIBRARY_PATH

case $LIBDIR in
    /*) echo "SKIP: absolute CMAKE_INSTALL_LIBDIR ($LIBDIR) cannot be installed into a test prefix"
        exit 77 ;;
esac
case $INCLUDEDIR in
    /*) echo "SKIP: absolute CMAKE_INSTALL_INCLUDEDIR ($INCLUDEDIR)"
        exit 77 ;;
esac

PREFIX=$WORK/prefix
rm -rf "$WORK"
mkdir -p "$WORK"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Shows what the dynamic linker would do, to diagnose a failed run.
diagnose() {
    if command -v readelf >/dev/null 2>&1; then
        echo "--- readelf -d $1" >&2
        readelf -d "$1" | grep -E 'NEEDED|RPATH|RUNPATH|SONAME' >&2 || true
    fi
    if command -v ldd >/dev/null 2>&1; then
        echo "--- ldd $1" >&2
        ldd "$1" >&2 || true
    fi
}

run() {
    echo "+ $*"
    if ! env -u LD_LIBRARY_PATH "$@"; then
        diagnose "$1"
        diagnose "$PREFIX/$LIBDIR/libgrpchelper.so.1"
        fail "$1 failed"
    fi
}

# 1. Install.
echo "+ $CMAKE --install $BUILD_DIR --prefix $PREFIX"
"$CMAKE" --install "$BUILD_DIR" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 || {
    cat "$WORK/install.log" >&2
    fail "cmake --install"
}

# 2. Layout.
LIB=$PREFIX/$LIBDIR
[ -f "$LIB/libgrpchelper.so.1" ] && [ ! -L "$LIB/libgrpchelper.so.1" ] ||
    fail "$LIB/libgrpchelper.so.1 is not a regular file"
[ -L "$LIB/libgrpchelper.so" ] || fail "$LIB/libgrpchelper.so is not a symlink"
[ "$(readlink "$LIB/libgrpchelper.so")" = "libgrpchelper.so.1" ] ||
    fail "$LIB/libgrpchelper.so -> $(readlink "$LIB/libgrpchelper.so"), expected libgrpchelper.so.1"
HEADERS=$SRC_DIR/../../Sources/CGRPCHelper/include
for h in grpchelper.h "$HEADERS"/grpchelper/*.h; do
    h=${h#"$HEADERS/"}
    cmp -s "$PREFIX/$INCLUDEDIR/$h" "$HEADERS/$h" ||
        fail "installed $h differs from Sources/CGRPCHelper/include/$h"
done
[ -f "$LIB/pkgconfig/grpchelper.pc" ] || fail "no $LIB/pkgconfig/grpchelper.pc"
[ -f "$LIB/cmake/grpchelper/grpchelperConfig.cmake" ] || fail "no grpchelperConfig.cmake"
[ -f "$LIB/cmake/grpchelper/grpchelperConfigVersion.cmake" ] ||
    fail "no grpchelperConfigVersion.cmake"
if command -v readelf >/dev/null 2>&1; then
    readelf -d "$LIB/libgrpchelper.so.1" | grep -q 'SONAME.*\[libgrpchelper\.so\.1\]' ||
        fail "SONAME of the installed library is not libgrpchelper.so.1"
fi
echo "installed layout OK"

# 3. pkg-config.
if [ -n "$PKG_CONFIG" ] && [ -x "$PKG_CONFIG" ]; then
    PKG_CONFIG_PATH=$LIB/pkgconfig
    export PKG_CONFIG_PATH
    version=$("$PKG_CONFIG" --modversion grpchelper) || fail "pkg-config --modversion"
    flags=$("$PKG_CONFIG" --cflags --libs grpchelper) || fail "pkg-config --cflags --libs"
    echo "pkg-config: grpchelper $version: $flags"
    case $flags in
        *"-Wl,-rpath,$LIB"*) ;;
        *) fail "pkg-config --libs lacks -Wl,-rpath,$LIB" ;;
    esac
    echo "+ $CC -std=c11 -o $WORK/consumer-pkgconfig consumer.c $flags"
    # $flags is split into words on purpose.
    # shellcheck disable=SC2086
    "$CC" -std=c11 -o "$WORK/consumer-pkgconfig" "$SRC_DIR/consumer.c" $flags ||
        fail "compiling consumer.c with pkg-config flags"
    run "$WORK/consumer-pkgconfig"
else
    echo "pkg-config not found: pkg-config part skipped"
    PKG_SKIPPED=1
fi

# 4. find_package.
set -- -S "$SRC_DIR/consumer" -B "$WORK/cmake-consumer" -G "$GENERATOR" \
    "-DCMAKE_C_COMPILER=$CC" "-DCMAKE_PREFIX_PATH=$PREFIX" \
    "-DGH_EXPECTED_PREFIX=$PREFIX" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_BUILD_TYPE=Release
if [ -n "$MAKE_PROGRAM" ]; then
    set -- "$@" "-DCMAKE_MAKE_PROGRAM=$MAKE_PROGRAM"
fi
echo "+ $CMAKE $*"
"$CMAKE" "$@" >"$WORK/cmake-consumer.log" 2>&1 || {
    cat "$WORK/cmake-consumer.log" >&2
    fail "configuring the find_package consumer"
}
grep 'grpchelper .* from' "$WORK/cmake-consumer.log" || true
"$CMAKE" --build "$WORK/cmake-consumer" >"$WORK/cmake-consumer-build.log" 2>&1 || {
    cat "$WORK/cmake-consumer-build.log" >&2
    fail "building the find_package consumer"
}
run "$WORK/cmake-consumer/consumer"

if [ "${PKG_SKIPPED:-0}" = 1 ]; then
    exit 77
fi
echo "install consumer test OK"
