"""kvstore.values - the plain values the v2 helpers return, and the request
pieces they share.

Entry (one key with its revisions), Page (one Range answer), TxnResult
(a Txn's outcome), KeyValue and WatchEvent (what a watch sees), built from
the response messages; the fields of a Range, ClearRange or Watch selector
and of a Set's expiry; prefix_end(); as_bytes(). No I/O here.
"""

import collections

UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF


class Entry(collections.namedtuple(
        "Entry", "key value create_revision mod_revision version revision ttl_ms",
        defaults=(0,))):
    """One key as the server holds it (docs/PROTOCOL.md, revisions).

    key              the key (bytes)
    value            its value (bytes; b"" when read with keys_only)
    create_revision  the revision of the write that created it
    mod_revision     the revision of its last change
    version          writes since it was created (1 after the first)
    revision         the store's revision at the read
    ttl_ms           milliseconds it has left to live, rounded up; 0: it
                     does not expire
    """

    __slots__ = ()


class KeyValue(collections.namedtuple(
        "KeyValue", "key value create_revision mod_revision version ttl_ms")):
    """A key in a watch event (WatchEvent.kv and .prev_kv).

    key              the key (bytes)
    value            its value (bytes; b"" in a DELETE event's kv)
    create_revision  the revision of the write that created it (0 in a DELETE's kv)
    mod_revision     the revision of this change (a DELETE's: the deletion's)
    version          writes since it was created (0 in a DELETE's kv)
    ttl_ms           PUT: the time to live the write gave, in ms left at that
                     moment; 0: none
    """

    __slots__ = ()


class WatchEvent(collections.namedtuple("WatchEvent", "type kv prev_kv expired")):
    """One change seen by a watch.

    type     "PUT" (a write) or "DELETE" (WatchEvent.PUT, WatchEvent.DELETE)
    kv       the key after the change, a KeyValue; for a DELETE only its
             key and mod_revision (the deletion's revision)
    prev_kv  the key before the change (a KeyValue), when the watch asked
             prev_kv=True and the key existed; else None
    expired  True for a DELETE made by expiry (the key's time to live ran out)

    revision is kv.mod_revision, the revision of the change.
    """

    __slots__ = ()
    PUT = "PUT"
    DELETE = "DELETE"

    @property
    def revision(self):
        return self.kv.mod_revision


class Page:
    """One answer of Range: ENTRIES (a list of Entry, in byte order, or
    descending for reverse), MORE (keys of the range follow this page),
    COUNT (keys in the whole range, not just this page) and REVISION (the
    store's at the read). Iterating a Page iterates its entries."""

    __slots__ = ("entries", "more", "count", "revision")

    def __init__(self, entries, more, count, revision):
        self.entries = entries
        self.more = more
        self.count = count
        self.revision = revision

    def __iter__(self):
        return iter(self.entries)

    def __len__(self):
        return len(self.entries)

    def __eq__(self, other):
        if not isinstance(other, Page):
            return NotImplemented
        return ((self.entries, self.more, self.count, self.revision)
                == (other.entries, other.more, other.count, other.revision))

    def __repr__(self):
        return "Page(entries=%r, more=%r, count=%r, revision=%r)" % (
            self.entries, self.more, self.count, self.revision)


class TxnResult:
    """What Txn.commit() returns.

    succeeded  True when every compare held (the "then" ops ran), False
               when the "else" ops ran
    results    one plain value per op run, in order, as the matching
               helper returns it: get -> Entry, or None for a missing key;
               set -> the revision written; clear -> the old value, or None
               when absent; range -> Page; clear_range -> keys deleted
    revision   the store's revision after the Txn (every write of a Txn
               makes this same revision; unchanged when nothing was written)
    response   the TxnResponse message itself
    """

    __slots__ = ("succeeded", "results", "revision", "response")

    def __init__(self, succeeded, results, revision, response):
        self.succeeded = succeeded
        self.results = results
        self.revision = revision
        self.response = response

    def __bool__(self):
        return self.succeeded

    def __repr__(self):
        return "TxnResult(succeeded=%r, results=%r, revision=%r)" % (
            self.succeeded, self.results, self.revision)


def entry_of_get(key, answer, in_txn=False):
    """Entry of a GetResponse for KEY. IN_TXN: the answer of a Get inside a
    Txn, where a missing key is found = false: None then. (Outside a Txn a
    missing key is NOT_FOUND, so any answer is an Entry.)"""
    if in_txn and not answer.found:
        return None
    return Entry(key, answer.value, answer.create_revision, answer.mod_revision,
                 answer.version, answer.revision, answer.ttl_ms)


def page_of(answer):
    """Page of a RangeResponse."""
    revision = answer.revision
    return Page([Entry(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, revision,
                       kv.ttl_ms)
                 for kv in answer.kvs], answer.more, answer.count, revision)


def key_value(kv):
    """KeyValue of a KeyValue message."""
    return KeyValue(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.ttl_ms)


_EVENT_TYPES = {0: WatchEvent.PUT, 1: WatchEvent.DELETE}


def watch_events(answer):
    """The WatchEvents of a WatchResponse, in order."""
    return [WatchEvent(_EVENT_TYPES.get(e.type, e.type), key_value(e.kv),
                       key_value(e.prev_kv) if e.HasField("prev_kv") else None, e.expired)
            for e in answer.events]


def watch_fields(key=None, end=None, prefix=None, start_revision=0, prev_kv=False):
    """The fields of a WatchRequest: one KEY, [KEY, END) (END b"\\x00": no
    upper bound), or a PREFIX. Which combinations are allowed is the
    server's to say (INVALID_ARGUMENT)."""
    fields = {}
    for name, value in (("key", key), ("end", end), ("prefix", prefix)):
        if value is not None:
            fields[name] = as_bytes(value, name)
    fields["start_revision"] = check_uint(start_revision, "start_revision")
    fields["prev_kv"] = bool(prev_kv)
    return fields


def set_fields(ttl_ms=None, keep_ttl=False):
    """The expiry fields of a SetRequest: ttl_ms (None or 0: the key does
    not expire) and keep_ttl. Both together are the server's to refuse."""
    fields = {}
    if ttl_ms is not None:
        fields["ttl_ms"] = check_uint(ttl_ms, "ttl_ms")
    if keep_ttl:
        fields["keep_ttl"] = True
    return fields


def page_limit(page_size, left):
    """The limit of the next Range call of a paged range: PAGE_SIZE (0: the
    server's page), capped by the LEFT keys still wanted (None: all)."""
    if left is None:
        return page_size
    return min(page_size or left, left, UINT32_MAX)


def next_page(fields, page, reverse):
    """The selector of the Range call after PAGE (made with FIELDS), or
    None when PAGE was the last: after the last key seen, a prefix turned
    into the [start, end) it stands for (a prefix cannot go with either)."""
    if not page.more:
        return None
    if not page.entries:
        raise RuntimeError("Range answered more = true with no keys: cannot page on")
    if "prefix" in fields:
        fields = {"start": fields["prefix"], "end": prefix_end(fields["prefix"])}
    else:
        fields = dict(fields)
    last = page.entries[-1].key
    if reverse:
        fields["end"] = last
    else:
        fields["start"] = last + b"\x00"
    return fields


def cleared_value(answer):
    """The old value of a ClearResponse, None when the key was absent."""
    return answer.value if answer.found else None


def txn_result(answer, requests):
    """TxnResult of a TxnResponse; REQUESTS are the TxnOps of the branch
    that ran (a Get's key is in its request, not its answer)."""
    results = []
    for i, result in enumerate(answer.results):
        kind = result.WhichOneof("result")
        if kind == "get":
            key = requests[i].get.key if i < len(requests) else b""
            results.append(entry_of_get(key, result.get, in_txn=True))
        elif kind == "set":
            results.append(result.set.revision)
        elif kind == "clear":
            results.append(cleared_value(result.clear))
        elif kind == "range":
            results.append(page_of(result.range))
        elif kind == "clear_range":
            results.append(result.clear_range.deleted)
        else:
            results.append(None)
    return TxnResult(answer.succeeded, results, answer.revision, answer)


def as_bytes(value, what="key"):
    """bytes, bytearray, memoryview or str (UTF-8) -> bytes."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes or str, not %s" % (what, type(value).__name__))


def selector(start=None, end=None, prefix=None):
    """The start/end/prefix fields of a Range or ClearRange request, as
    bytes, leaving out those not given. The server refuses prefix together
    with start or end (INVALID_ARGUMENT): that is left to it to say."""
    fields = {}
    if start is not None:
        fields["start"] = as_bytes(start, "start")
    if end is not None:
        fields["end"] = as_bytes(end, "end")
    if prefix is not None:
        fields["prefix"] = as_bytes(prefix, "prefix")
    return fields


def prefix_end(prefix):
    """The first key after every key that begins with PREFIX: PREFIX with
    its trailing 0xff bytes dropped and its last byte then incremented;
    b"" (no upper bound) when PREFIX is empty or all 0xff."""
    trimmed = bytes(prefix).rstrip(b"\xff")
    if not trimmed:
        return b""
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def check_uint(value, what, top=UINT64_MAX):
    """VALUE when it is an int from 0 to TOP, else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if not 0 <= value <= top:
        raise ValueError("%s must be from 0 to %d, not %d" % (what, top, value))
    return value
