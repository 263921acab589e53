"""Flare's .proto files and the stubs generated from them (`python -m services.common.proto.generate`)."""
