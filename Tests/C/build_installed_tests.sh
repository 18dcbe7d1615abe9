#!/bin/sh
# ctest fixture c.install_and_build: installs this build into a prefix and
# builds the C test programs against the *installed* files, through pkg-config
# only (no -I/-L into the source or build tree).
#
#   build_installed_tests.sh CMAKE BUILD_DIR TESTS_SRC_DIR CC PKG_CONFIG LIBDIR
#                            WORK_DIR TEST...
#
# 1. cmake --install BUILD_DIR --prefix WORK_DIR/prefix
# 2. for each TEST:
#      CC -std=c11 -Wall -Wextra -Werror TEST.c testutil.c \
#         $(pkg-config --cflags --libs grpchelper) -lpthread -o WORK_DIR/bin/TEST
#    with PKG_CONFIG_PATH=WORK_DIR/prefix/LIBDIR/pkgconfig.
# LD_LIBRARY_PATH is unset; the programs find libgrpchelper through the
# -Wl,-rpath of the pkg-config file, as an application would.
set -eu

if [ $# -lt 8 ]; then
    echo "usage: $0 CMAKE BUILD_DIR TESTS_SRC_DIR CC PKG_CONFIG LIBDIR WORK_DIR TEST..." >&2
    exit 2
fi
CMAKE=$1
BUILD_DIR=$2
SRC_DIR=$3
CC=$4
PKG_CONFIG=$5
LIBDIR=$6
WORK=$7
shift 7

unset LD_LIBRARY_PATH

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

case $LIBDIR in
    /*) fail "absolute CMAKE_INSTALL_LIBDIR ($LIBDIR) cannot be installed into a test prefix" ;;
esac
if [ -z "$PKG_CONFIG" ] || [ ! -x "$PKG_CONFIG" ]; then
    fail "pkg-config not found (the C tests are built through pkg-config)"
fi

PREFIX=$WORK/prefix
BIN=$WORK/bin
rm -rf "$WORK"
mkdir -p "$BIN"

echo "+ $CMAKE --install $BUILD_DIR --prefix $PREFIX"
"$CMAKE" --install "$BUILD_DIR" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 || {
    cat "$WORK/install.log" >&2
    fail "cmake --install"
}

PKG_CONFIG_PATH=$PREFIX/$LIBDIR/pkgconfig
export PKG_CONFIG_PATH
flags=$("$PKG_CONFIG" --cflags --libs grpchelper) || fail "pkg-config --cflags --libs grpchelper"
echo "pkg-config (PKG_CONFIG_PATH=$PKG_CONFIG_PATH): $flags"
# Every search path must be the installed prefix's.
for f in $flags; do
    case $f in
        -I"$PREFIX"/* | -L"$PREFIX"/* | -Wl,-rpath,"$PREFIX"/*) ;;
        -I* | -L* | -Wl,-rpath,*) fail "pkg-config flag $f is outside $PREFIX" ;;
    esac
done

for test in "$@"; do
    echo "+ $CC -std=c11 -Wall -Wextra -Werror $test.c testutil.c $flags -lpthread -o $BIN/$test"
    # $flags is split into words on purpose.
    # shellcheck disable=SC2086
    "$CC" -std=c11 -Wall -Wextra -Werror \
        "$SRC_DIR/$test.c" "$SRC_DIR/testutil.c" \
        $flags -lpthread -o "$BIN/$test" || fail "compiling $test"
done
echo "built $# C tests against $PREFIX"
