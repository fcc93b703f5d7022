"""kvstore._proto - finds the message classes protoc generated from kv.proto.

The generated module kvstore/v1/kv_pb2.py is never committed: meson, setup.py
or a hand-run protoc writes it (see README.md). This file only locates it
and answers descriptor questions; it holds no message definitions.
"""

from google.protobuf import message_factory, symbol_database

try:
    from .v1 import kv_pb2
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "kvstore: the generated module kvstore.v1.kv_pb2 is missing. Build it "
        "with meson (it lands in <build>/client/python, add that to PYTHONPATH), "
        "install with pip, or run in client/python: "
        "protoc --proto_path=../../proto --python_out=. kvstore/v1/kv.proto"
    ) from exc

SERVICE_NAME = "KV"
service = kv_pb2.DESCRIPTOR.services_by_name[SERVICE_NAME]
RpcRequest = kv_pb2.RpcRequest
RpcResponse = kv_pb2.RpcResponse


def status_enum():
    """The StatusCode enum descriptor."""
    return kv_pb2.DESCRIPTOR.enum_types_by_name["StatusCode"]


def method_path(method):
    """The gRPC path of a MethodDescriptor: "/kvstore.v1.KV/Get"."""
    return "/%s/%s" % (method.containing_service.full_name, method.name)


# protobuf >= 4.22 has GetMessageClass. Debian 12's 4.21 lacks it; there the
# symbol database holds the classes the generated module registered.
_get_class = getattr(message_factory, "GetMessageClass", None)


def message_class(descriptor):
    """The generated Python class of a message Descriptor."""
    if _get_class is not None:
        return _get_class(descriptor)
    return symbol_database.Default().GetSymbol(descriptor.full_name)
