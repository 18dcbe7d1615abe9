"""Interop tests against the ORIGINAL grpc-helper (a package so that its conftest and modules
get their own names: Tests/interop imports its conftest by the bare name `conftest`)."""
