#!/usr/bin/env bash
# Regenerates the committed SwiftProtobuf and Python code from Protos/, and copies the helper
# services' .proto files into the Python package. Never run at build time.
#   bash Protos/generate.sh            (builds protoc-gen-swift once into .build-protoc)
# Needs: python3 -m grpc_tools.protoc (pip grpcio-tools) and the swift-protobuf package
# at the version Package.swift names.
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGIN="${PROTOC_GEN_SWIFT:-}"
if [ -z "$PLUGIN" ]; then
    src=.build-protoc/swift-protobuf
    if [ ! -d "$src" ]; then
        mkdir -p .build-protoc
        git clone -q https://github.com/apple/swift-protobuf.git "$src"
        git -C "$src" checkout -q 1.39.0
    fi
    (cd "$src" && swift build -c release --product protoc-gen-swift)
    PLUGIN="$src/.build/release/protoc-gen-swift"
fi
out=Sources/InteropMessages/Generated
mkdir -p "$out"
python3 -m grpc_tools.protoc -I Protos \
    --plugin=protoc-gen-swift="$PLUGIN" \
    --swift_opt=Visibility=Public \
    --swift_out="$out" \
    Protos/grpc/testing/empty.proto Protos/grpc/testing/messages.proto
echo "generated into $out"

# The helper services' messages (wire contract: docs/WIRE.md): Swift messages for the
# GRPCHelper target, Python messages and stubs/servicers for the grpchelper.api package.
api=(Protos/grpchelper/api/common.proto Protos/grpchelper/api/server.proto
     Protos/grpchelper/api/config.proto Protos/grpchelper/api/logger.proto
     Protos/grpchelper/api/events.proto)
out=Sources/GRPCHelper/Generated
mkdir -p "$out"
python3 -m grpc_tools.protoc -I Protos \
    --plugin=protoc-gen-swift="$PLUGIN" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=DropPath \
    --swift_out="$out" \
    "${api[@]}"
echo "generated into $out"
python3 -m grpc_tools.protoc -I Protos \
    --python_out=bindings/python --grpc_python_out=bindings/python \
    "${api[@]}"
echo "generated into bindings/python/grpchelper/api"
# The .proto files themselves ship in the package too, for users' own .proto files that
# import them (grpchelper.api.proto_include() is the -I folder); copies of Protos/, which
# stays the source: bindings/python/tests/test_proto_package.py checks they are identical.
protos=bindings/python/grpchelper/api/_proto/grpchelper/api
mkdir -p "$protos"
rm -f "$protos"/*.proto
cp "${api[@]}" "$protos/"
echo "copied the .proto files into $protos"

# The sample service of the RpcServer / RpcClient examples: Swift for
# examples/swift/RpcSample, Python for examples/python/sample.
out=examples/swift/RpcSample/Generated
mkdir -p "$out"
python3 -m grpc_tools.protoc -I Protos \
    --plugin=protoc-gen-swift="$PLUGIN" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=DropPath \
    --swift_opt=ProtoPathModuleMappings=Protos/sample/module_mappings.asciipb \
    --swift_out="$out" \
    Protos/sample/my.proto
echo "generated into $out"
python3 -m grpc_tools.protoc -I Protos \
    --python_out=examples/python --grpc_python_out=examples/python \
    Protos/sample/my.proto
echo "generated into examples/python/sample"
