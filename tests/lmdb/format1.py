"""format1 - writes a data directory as kvstored wrote it before revisions
(format 1, "kvstored-lmdb 1"), for the migration tests: LMDB's own C
library through ctypes, so the layout is made by the same code that reads
it, not by a copy of kvstored's.

Format 1: two named databases; "kv" holds each key's bare value, "meta"
holds "format" = b"kvstored-lmdb 1" and "data_bytes" = the sum of key and
value lengths, a uint64 in the host's byte order.

    format1.write(path, {b"k": b"v"})     # creates PATH/data.mdb
"""

import ctypes
import ctypes.util
import os
import struct

MDB_CREATE = 0x40000


class _Val(ctypes.Structure):
    _fields_ = [("mv_size", ctypes.c_size_t), ("mv_data", ctypes.c_void_p)]


def library():
    """liblmdb through ctypes, or None when it cannot be loaded."""
    for name in ("liblmdb.so.0", ctypes.util.find_library("lmdb")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                pass
    return None


def write(path, items, format_mark=b"kvstored-lmdb 1", map_bytes=64 << 20, data_bytes=None):
    """Creates PATH (a directory) holding a format-1 store of ITEMS
    ({key: value}); FORMAT_MARK and DATA_BYTES (default: the true sum) may
    be given to make other stores. Raises OSError when an LMDB call fails."""
    lib = library()
    if lib is None:
        raise OSError("liblmdb cannot be loaded")
    os.makedirs(path, exist_ok=True)
    env, txn = ctypes.c_void_p(), ctypes.c_void_p()
    kv, meta = ctypes.c_uint(), ctypes.c_uint()
    keep = []                   # the buffers MDB_vals point to, alive until the commit

    def check(rc, what):
        if rc != 0:
            lib.mdb_strerror.restype = ctypes.c_char_p
            raise OSError("%s: %s" % (what, lib.mdb_strerror(rc).decode()))

    def val(data):
        buf = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        keep.append(buf)
        return _Val(len(data), ctypes.cast(buf, ctypes.c_void_p))

    def put(dbi, key, value):
        k, v = val(key), val(value)
        check(lib.mdb_put(txn, dbi, ctypes.byref(k), ctypes.byref(v), 0), "mdb_put")

    check(lib.mdb_env_create(ctypes.byref(env)), "mdb_env_create")
    try:
        check(lib.mdb_env_set_maxdbs(env, 2), "mdb_env_set_maxdbs")
        check(lib.mdb_env_set_mapsize(env, ctypes.c_size_t(map_bytes)), "mdb_env_set_mapsize")
        check(lib.mdb_env_open(env, os.fsencode(path), 0, 0o644), "mdb_env_open")
        check(lib.mdb_txn_begin(env, None, 0, ctypes.byref(txn)), "mdb_txn_begin")
        check(lib.mdb_dbi_open(txn, b"meta", MDB_CREATE, ctypes.byref(meta)), "mdb_dbi_open meta")
        check(lib.mdb_dbi_open(txn, b"kv", MDB_CREATE, ctypes.byref(kv)), "mdb_dbi_open kv")
        put(meta, b"format", format_mark)
        if data_bytes is None:
            data_bytes = sum(len(k) + len(v) for k, v in items.items())
        put(meta, b"data_bytes", struct.pack("=Q", data_bytes))
        for k, v in items.items():
            put(kv, k, v)
        check(lib.mdb_txn_commit(txn), "mdb_txn_commit")
    finally:
        lib.mdb_env_close(env)
