"""Layer 3: grpc-helper's classes on the library's helper layer and managed server.

Implementation modules (public under the paths grpc-helper programs import:
grpchelper.errors, .folders, .config, .cli, .logs, .manager, .client, .rpc_server):

- `errors`: RpcException; `folders`: Folders; `cli`: RpcCliParser (argparse);
- `config`: Config, ConfigHolder, RpcStaticConfig; `config_set`: ConfigSet;
- `logs`: RpcLogs; `manager`: RpcManager;
- `client`: RpcClient; `rpc_service`: RpcServiceDescriptor and the services' entry
  points; `rpc_server`: RpcServer.

Nothing is imported here: most of these modules need grpchelper.api (protobuf, grpcio),
which `import grpchelper` does not.
"""
