"""old_formats - writes a data directory as an older kvstored wrote it, for
the migration tests, and reads a store's format mark: LMDB's own C library
through ctypes, so the layout is made by the same code that reads it, not
by a copy of kvstored's.

Format 1 (before revisions): two named databases; "kv" holds each key's
bare value, "meta" holds "format" = b"kvstored-lmdb 1" and "data_bytes" =
the sum of key and value lengths, a uint64 in the host's byte order.
Format 2 (revisions, before deadlines): "kv" holds each key's
create_revision, mod_revision and version as varints, then its value;
"meta" also holds "revision", the store's, a uint64 like "data_bytes".

    old_formats.write(path, {b"k": b"v"})               # format 1
    old_formats.write2(path, {b"k": (b"v", 1, 3, 2)}, 3)  # format 2
    old_formats.mark(path)                              # b"kvstored-lmdb 3"
"""

import ctypes
import ctypes.util
import os
import struct

MDB_CREATE = 0x40000
MDB_RDONLY = 0x20000


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


def varint(n):
    """N as a protobuf varint."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def write(path, items, format_mark=b"kvstored-lmdb 1", map_bytes=64 << 20, data_bytes=None,
          meta=None):
    """Creates PATH (a directory) holding a format-1 store of ITEMS
    ({key: value}); FORMAT_MARK and DATA_BYTES (default: the true sum) may
    be given to make other stores, and META ({name: bytes}) more records of
    "meta". Raises OSError when an LMDB call fails."""
    lib = library()
    if lib is None:
        raise OSError("liblmdb cannot be loaded")
    os.makedirs(path, exist_ok=True)
    env, txn = ctypes.c_void_p(), ctypes.c_void_p()
    kv, meta_db = ctypes.c_uint(), ctypes.c_uint()
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
        check(lib.mdb_dbi_open(txn, b"meta", MDB_CREATE, ctypes.byref(meta_db)),
              "mdb_dbi_open meta")
        check(lib.mdb_dbi_open(txn, b"kv", MDB_CREATE, ctypes.byref(kv)), "mdb_dbi_open kv")
        put(meta_db, b"format", format_mark)
        if data_bytes is None:
            data_bytes = sum(len(k) + len(v) for k, v in items.items())
        put(meta_db, b"data_bytes", struct.pack("=Q", data_bytes))
        for name, value in (meta or {}).items():
            put(meta_db, name, value)
        for k, v in items.items():
            put(kv, k, v)
        check(lib.mdb_txn_commit(txn), "mdb_txn_commit")
    finally:
        lib.mdb_env_close(env)


def write2(path, entries, revision, **options):
    """Creates PATH holding a format-2 store of ENTRIES ({key: (value,
    create_revision, mod_revision, version)}) at store revision REVISION;
    OPTIONS as write()'s."""
    items = {k: varint(c) + varint(m) + varint(n) + v for k, (v, c, m, n) in entries.items()}
    options.setdefault("data_bytes", sum(len(k) + len(e[0]) for k, e in entries.items()))
    options.setdefault("format_mark", b"kvstored-lmdb 2")
    write(path, items, meta={b"revision": struct.pack("=Q", revision)}, **options)


def mark(path, map_bytes=64 << 20):
    """The format mark of the store in PATH (None when it has none), read in
    a read-only transaction."""
    lib = library()
    if lib is None:
        raise OSError("liblmdb cannot be loaded")
    env, txn, meta_db = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint()
    key, data = _Val(6, ctypes.cast(ctypes.c_char_p(b"format"), ctypes.c_void_p)), _Val()
    if lib.mdb_env_create(ctypes.byref(env)) != 0:
        raise OSError("mdb_env_create failed")
    try:
        if (lib.mdb_env_set_maxdbs(env, 3) != 0 or
                lib.mdb_env_set_mapsize(env, ctypes.c_size_t(map_bytes)) != 0 or
                lib.mdb_env_open(env, os.fsencode(path), MDB_RDONLY, 0o644) != 0 or
                lib.mdb_txn_begin(env, None, MDB_RDONLY, ctypes.byref(txn)) != 0):
            raise OSError("cannot open the LMDB environment in %s" % path)
        try:
            if lib.mdb_dbi_open(txn, b"meta", 0, ctypes.byref(meta_db)) != 0:
                return None
            if lib.mdb_get(txn, meta_db, ctypes.byref(key), ctypes.byref(data)) != 0:
                return None
            return ctypes.string_at(data.mv_data, data.mv_size)
        finally:
            lib.mdb_txn_abort(txn)
    finally:
        lib.mdb_env_close(env)
