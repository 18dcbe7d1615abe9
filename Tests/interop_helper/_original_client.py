"""Child process: calls made with ONE ORIGINAL grpc-helper RpcClient.

Run by original.run_client with PYTHONPATH = <original's folder>[:<generated sample code>].
Reads a JSON spec on stdin:
  {"host", "port", "name", "timeout", "exception",
   "stubs": {attr: ["module:StubClass", version or null]},
   "calls": [{"stub", "method", "request_type": "module:Class", "request": {...},
              "timeout"?: float, "limit"?: int}]}
and prints one JSON line: a list with one result per call (see original.run_client).
"""
import importlib
import inspect
import json
import os
import sys
from pathlib import Path

from google.protobuf import json_format

import grpc_helper
from grpc_helper import RpcClient
from grpc_helper_api import ResultCode


def resolve(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def to_dict(msg) -> dict:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def describe(e: Exception) -> dict:
    rc = getattr(e, "rc", None)
    try:
        rc_name = ResultCode.Name(rc) if rc is not None else None
    except ValueError:
        rc_name = None
    return {"type": type(e).__name__, "rc": int(rc) if rc is not None else None,
            "rc_name": rc_name, "message": str(e)}


def main():
    assert "grpchelper" not in sys.modules
    original_dir = Path(os.environ["PYTHONPATH"].split(os.pathsep)[0]).resolve()
    assert Path(grpc_helper.__file__).resolve().parent.parent == original_dir, grpc_helper.__file__
    spec = json.load(sys.stdin)
    stubs_map = {attr: (resolve(ref), version) for attr, (ref, version) in spec["stubs"].items()}
    client = RpcClient(spec["host"], spec["port"], stubs_map, timeout=spec["timeout"],
                       name=spec["name"], exception=spec["exception"])
    results = []
    for c in spec["calls"]:
        request = json_format.ParseDict(c["request"], resolve(c["request_type"])())
        method = getattr(getattr(client, c["stub"]), c["method"])
        kwargs = {"timeout": c["timeout"]} if "timeout" in c else {}
        responses = []
        try:
            out = method(request, **kwargs)
            if inspect.isgenerator(out):
                for m in out:
                    responses.append(m)
                    if "limit" in c and len(responses) >= c["limit"]:
                        out.close()
                        break
                results.append({"ok": True, "responses": [to_dict(m) for m in responses],
                                "hex": [m.SerializeToString().hex() for m in responses]})
            else:
                results.append({"ok": True, "response": to_dict(out),
                                "hex": out.SerializeToString().hex()})
        except Exception as e:  # NOQA: B902 (any raised error is a result here)
            r = {"ok": False, "exception": describe(e)}
            if responses:
                r["responses"] = [to_dict(m) for m in responses]
            results.append(r)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
