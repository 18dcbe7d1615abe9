"""Checks that a server under benchmark really answers the bench request.

    python3 verify.py HOST:PORT BODYFILE...

Each BODYFILE is a gRPC length-prefixed message as h2load sends it (5-byte
prefix + EchoMessage). For each, makes one unary call to
/grpchelper.examples.Echo/Unary with grpcio (raw bytes) and requires status
OK and a reply equal to the request. Exits non-zero, saying why, otherwise.
"""
import sys

import grpc


def main() -> int:
    target, bodies = sys.argv[1], sys.argv[2:]
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        unary = channel.unary_unary("/grpchelper.examples.Echo/Unary")
        for path in bodies:
            with open(path, "rb") as f:
                frame = f.read()
            message = frame[5:]
            if frame[0] != 0 or int.from_bytes(frame[1:5], "big") != len(message):
                print(f"verify: {path}: not a gRPC frame", file=sys.stderr)
                return 1
            try:
                reply, call = unary.with_call(message, timeout=10)
            except grpc.RpcError as e:
                print(f"verify: {target}: {path}: status {e.code().name}: {e.details()}",
                      file=sys.stderr)
                return 1
            if call.code() != grpc.StatusCode.OK:
                print(f"verify: {target}: {path}: status {call.code().name}", file=sys.stderr)
                return 1
            if reply != message:
                print(f"verify: {target}: {path}: reply of {len(reply)} bytes differs "
                      f"from the {len(message)}-byte request", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
