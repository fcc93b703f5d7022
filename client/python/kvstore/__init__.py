"""kvstore - Python client of kvstored, generated from proto/kvstore/v1/kv.proto.

    import kvstore
    with kvstore.Client("127.0.0.1:7379") as c:
        c.set(b"k", b"v")
        c.get(b"k")                            # b"v"
        c.Get(kvstore.pb.GetRequest(key=b"k"))  # every rpc, from the descriptor
        c.get_entry(b"k").mod_revision          # revisions
        for e in c.range(prefix=b"k"):          # ordered, paged for you
            print(e.key, e.value)
        c.set(b"s", b"v", ttl_ms=30000)         # expires in 30 s
        with c.watch(prefix=b"cfg/") as w:      # changes, as they happen
            for event in w:
                print(event.type, event.kv.key)

Over TLS (a server started with --tls-cert):

    ctx = kvstore.tls_context(cafile="ca.crt")      # or any ssl.SSLContext
    with kvstore.Client("db.example:7379", ssl=ctx) as c:
        ...

kvstore.aio has the asyncio client (AsyncClient).

This file only gathers the public names; see client.py, pipeline.py,
stubs.py, txn.py, watch.py, values.py, connection.py, tls.py, raw.py,
errors.py and aio.py.
"""

# The generated kvstore/v1/kv_pb2.py may live in another directory on
# sys.path (meson's build dir) than these sources: let it join the package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from ._proto import kv_pb2 as pb, service  # noqa: E402
from .client import Client  # noqa: E402
from .connection import parse_endpoint  # noqa: E402
from .errors import (  # noqa: E402
    DeadlineExceeded, FailedPrecondition, InvalidArgument, KeyNotFound, ResourceExhausted,
    RpcError, Unauthenticated, Unavailable, Unimplemented, WatchCanceled, status_code,
    status_name)
from .pipeline import Pipeline, Reply  # noqa: E402
from .raw import RawConnection  # noqa: E402
from .tls import tls_context  # noqa: E402
from . import txn  # noqa: E402
from .txn import Txn  # noqa: E402
from .values import Entry, KeyValue, Page, TxnResult, WatchEvent, prefix_end  # noqa: E402
from .watch import Watch  # noqa: E402

__version__ = "0.1.0"


def connect(endpoint=None, timeout=5.0, connect_timeout=None, token=None, *, ssl=None,
            server_hostname=None):
    """Same as Client(endpoint, timeout, connect_timeout, token, ssl=ssl,
    server_hostname=server_hostname)."""
    return Client(endpoint, timeout, connect_timeout, token, ssl=ssl,
                  server_hostname=server_hostname)


__all__ = [
    "Client", "Pipeline", "Reply", "RawConnection", "connect", "tls_context", "pb", "service",
    "parse_endpoint",
    "Entry", "Page", "Txn", "TxnResult", "txn", "prefix_end", "Watch", "WatchEvent", "KeyValue",
    "RpcError", "InvalidArgument", "KeyNotFound", "ResourceExhausted", "FailedPrecondition",
    "Unimplemented", "Unauthenticated", "DeadlineExceeded", "Unavailable", "WatchCanceled",
    "status_code", "status_name",
]
