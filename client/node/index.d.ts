// index.d.ts - TypeScript types for the public surface of the kvstore
// Node.js client (hand-written; index.js and lib/ are the code). The rpc
// methods below mirror proto/kvstore/v1/kv.proto; an rpc added there later
// is callable at once as client.call('Name', request) (or client.Name in JS).
/// <reference types="node" />
import type { Long, Service, Root, Type, Enum, Method } from 'protobufjs';
import { EventEmitter } from 'node:events';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';

/** Options of one call. */
export interface CallOptions {
  /** Milliseconds before the call fails with DEADLINE_EXCEEDED, retries
   * on other nodes included; 0: none. Default: the client's. */
  timeout?: number;
}

/** Options of a read (get, getEntry, rangePage, range, count). */
export interface ReadOptions extends CallOptions {
  /** Read from the node connected to, from what it has applied (maybe
   * stale, never torn); default: linearizable, answered by the leader. */
  serializable?: boolean;
}

export interface ConnectOptions {
  /** Default per-call timeout in ms (5000); 0: none. */
  timeout?: number;
  /** Connect timeout in ms (default: timeout, or 5000). */
  connectTimeout?: number;
  /** The kv.proto to load (default $KVSTORE_PROTO, else DEFAULT_PROTO_PATH). */
  protoPath?: string;
  /** Sent with Auth right after connecting (servers with --auth-token-file). */
  token?: string | Uint8Array;
  /**
   * TLS, for a server started with --tls-cert: true (the system's CAs) or
   * tls.connect's options (ca, cert, key, servername, rejectUnauthorized,
   * ...; not host, port, path or socket: the endpoint's). The certificate
   * must name servername, else the endpoint's host. Every connection of the
   * client uses it: reconnects, each endpoint, the leader a node names.
   * Default: plaintext. A failed handshake rejects connect() with
   * UNAVAILABLE ("TLS handshake with HOST:PORT failed: ..."; the TLS error
   * is the RpcError's cause).
   */
  tls?: boolean | TlsConnectionOptions;
}

/** A bytes field: Buffer/Uint8Array, or a string taken as UTF-8. */
export type BytesInput = Uint8Array | string;
/** uint64 fields decode as Long (protobufjs with long.js) or number. */
export type Uint64 = number | Long;

export interface PingRequest { message?: string }
export interface PingResponse { message: string }
export interface GetRequest { key?: BytesInput }
export interface GetResponse {
  value: Buffer;
  create_revision: Uint64;
  mod_revision: Uint64;
  version: Uint64;
  /** The store's revision at the read. */
  revision: Uint64;
  /** True on OK; false only inside a Txn, for a missing key. */
  found: boolean;
  /** Milliseconds the key has left, rounded up; 0: it does not expire. */
  ttl_ms: Uint64;
}
export interface SetRequest {
  key?: BytesInput;
  value?: BytesInput;
  /** The key expires this many ms after the write; 0: it does not (and loses any TTL, unless keep_ttl). */
  ttl_ms?: number | Long;
  /** Write only if the key's mod_revision is this (0: only if absent); leave out for none. */
  if_mod_revision?: number | Long;
  /** With ttl_ms 0: keep the TTL the key has. */
  keep_ttl?: boolean;
}
export interface SetResponse { key: Buffer; revision: Uint64 }
export interface ClearRequest { key?: BytesInput; if_mod_revision?: number | Long }
export interface ClearResponse { found: boolean; value: Buffer; revision: Uint64 }
export interface KeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: Uint64;
  mod_revision: Uint64;
  version: Uint64;
  ttl_ms: Uint64;
}
export interface RangeRequest {
  start?: BytesInput;
  end?: BytesInput;
  prefix?: BytesInput;
  limit?: number;
  keys_only?: boolean;
  count_only?: boolean;
  reverse?: boolean;
}
export interface RangeResponse { kvs: KeyValue[]; more: boolean; count: Uint64; revision: Uint64 }
export interface ClearRangeRequest { start?: BytesInput; end?: BytesInput; prefix?: BytesInput }
export interface ClearRangeResponse { deleted: Uint64; revision: Uint64 }
/** Compare.Target: VALUE 0, MOD_REVISION 1, CREATE_REVISION 2, VERSION 3. */
export type CompareTarget = 0 | 1 | 2 | 3;
/** Compare.Op: EQUAL 0, NOT_EQUAL 1, LESS 2, GREATER 3. */
export type CompareOp = 0 | 1 | 2 | 3;
export interface Compare {
  key: BytesInput;
  target?: CompareTarget;
  op?: CompareOp;
  value?: BytesInput;
  number?: number | Long;
}
export interface TxnOp {
  get?: GetRequest;
  set?: SetRequest;
  clear?: ClearRequest;
  range?: RangeRequest;
  clear_range?: ClearRangeRequest;
}
export interface TxnOpResult {
  /** Which one is set. */
  result: 'get' | 'set' | 'clear' | 'range' | 'clear_range';
  get?: GetResponse | null;
  set?: SetResponse | null;
  clear?: ClearResponse | null;
  range?: RangeResponse | null;
  clear_range?: ClearRangeResponse | null;
}
export interface TxnRequest { compare?: Compare[]; success?: TxnOp[]; failure?: TxnOp[] }
export interface TxnResponse { succeeded: boolean; results: TxnOpResult[]; revision: Uint64 }
export interface TouchRequest { key?: BytesInput; ttl_ms?: number | Long }
export interface TouchResponse { found: boolean }
export interface WatchRequest {
  key?: BytesInput;
  end?: BytesInput;
  prefix?: BytesInput;
  start_revision?: number | Long;
  prev_kv?: boolean;
}
export interface WatchEventMessage {
  /** PUT 0, DELETE 1. */
  type: 0 | 1;
  kv: KeyValue;
  prev_kv?: KeyValue | null;
  expired: boolean;
}
export interface WatchResponse {
  watch_id: Uint64;
  events: WatchEventMessage[];
  canceled: boolean;
  cancel_reason: string;
  compact_revision: Uint64;
}
export interface CancelWatchRequest { watch_id?: number | Long }
export interface CancelWatchResponse {}
export interface AuthRequest { token?: BytesInput }
export interface AuthResponse {}
export interface StatsRequest {}
export interface MethodStats { method: string; calls: Uint64; errors: Uint64 }
export interface StatsResponse {
  uptime_seconds: Uint64;
  connections_current: Uint64;
  connections_total: Uint64;
  methods: MethodStats[];
  requests_total: Uint64;
  errors_total: Uint64;
  keys: Uint64;
  data_bytes: Uint64;
  engine_memory_bytes: Uint64;
  resident_memory_bytes: Uint64;
  engine: string;
  version: string;
  max_memory_bytes: Uint64;
  connections_rejected: Uint64;
  engine_file_bytes: Uint64;
  engine_map_bytes: Uint64;
  engine_last_sync_unix_ms: Uint64;
  engine_sync: string;
  input_buffer_bytes: Uint64;
  output_buffer_bytes: Uint64;
  connections_closed_output: Uint64;
  auth_refused: Uint64;
  revision: Uint64;
  expired_keys_total: Uint64;
  keys_with_ttl: Uint64;
  watchers: Uint64;
  watch_events_total: Uint64;
  watch_history_oldest: Uint64;
}

/** A hand-built envelope for Client.exchange(); the client assigns the id. */
export interface RpcRequestEnvelope { method: string; payload?: Uint8Array }
/** The server's envelope, whatever its code; stream: a stream frame (a Watch's events), not an answer. */
export interface RpcResponse { id: number; code: number; message: string; payload: Buffer; stream: boolean }

/** A call that failed: gRPC status number and name, the server's message. */
export class RpcError extends Error {
  /** Status number, e.g. 5. */
  readonly code: number;
  /** gRPC name, e.g. "NOT_FOUND". */
  readonly codeName: string;
  /** Why, e.g. "key not found". */
  readonly details: string;
  /** The call's method path, when known. */
  readonly method: string | null;
}
/** NOT_FOUND: Get of a missing key. */
export class KeyNotFoundError extends RpcError {}
/** FAILED_PRECONDITION: a conditional write refused (the key's mod_revision was another); nothing changed. */
export class FailedPreconditionError extends RpcError {}
/** The server ended a watch (its last frame said canceled). Not an RpcError: the stream was ended. */
export class WatchCanceledError extends Error {
  readonly watchId: number;
  /** The server's words ("compacted", "too slow", ...). */
  readonly cancelReason: string;
  /** In the compacted case, the oldest revision a watch may start from now; else 0. */
  readonly compactRevision: number;
  /** compactRevision > 0. */
  readonly compacted: boolean;
}

/** One key as the server holds it; revisions are numbers. */
export interface Entry {
  key: Buffer;
  /** Empty when read with keysOnly. */
  value: Buffer;
  /** The revision of the write that created the key. */
  createRevision: number;
  /** The revision of its last change. */
  modRevision: number;
  /** Writes since it was created (1 after the first). */
  version: number;
  /** The store's revision at the read. */
  revision: number;
  /** Milliseconds the key has left, rounded up; 0: it does not expire. */
  ttlMs: number;
}

/** Expiry options of a write (set, cas, op.set). */
export interface TtlOptions {
  /** The key expires this many ms after the write (at most 10^12); absent, null or 0: it does not. */
  ttlMs?: number | null;
  /** Keep the TTL the key has (with no ttlMs); none for a new key. */
  keepTtl?: boolean;
}
export interface SetOptions extends CallOptions, TtlOptions {}

/** A key in a watch event. */
export interface KeyValueEntry {
  key: Buffer;
  /** Empty in a DELETE's kv. */
  value: Buffer;
  createRevision: number;
  /** The revision of the change (a DELETE's: the deletion's). */
  modRevision: number;
  version: number;
  /** PUT: the TTL the write gave, as ms left then; 0: none. */
  ttlMs: number;
}

/** One change seen by a watch. */
export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  /** The key after the change; for a DELETE only key and modRevision. */
  kv: KeyValueEntry;
  /** The key before the change, with prevKv and when it existed; else null. */
  prevKv: KeyValueEntry | null;
  /** A DELETE made by expiry. */
  expired: boolean;
  /** kv.modRevision. */
  revision: number;
}

/** What to watch: key (one), key + end ([key, end); end "\0": no upper bound), or prefix. */
export interface WatchQuery {
  key?: BytesInput;
  end?: BytesInput;
  prefix?: BytesInput;
  /** 0 or absent: changes after now; N: every change of revision >= N (history, then live). */
  startRevision?: number;
  /** Events carry the key as it was before the change. */
  prevKv?: boolean;
}

/**
 * A watch: an async iterator of events and an EventEmitter ('event', 'error', 'end').
 * Events are queued for the iteration unless an 'event' listener is attached and no iteration has started.
 */
export class Watch extends EventEmitter implements AsyncIterable<WatchEvent> {
  /** The server's id of the watch (0 until ready). */
  readonly watchId: number;
  /** The revision of the last event taken by the iteration or nextEvent(). */
  readonly lastRevision: number;
  /** Resolves with the watch's id once the server answered; rejects with the Watch call's RpcError. */
  readonly ready: Promise<number>;
  /** True once cancel() ran, the server ended the watch, or the connection was lost. */
  readonly closed: boolean;
  /**
   * The next event, waiting up to timeout ms (absent: no limit); null when the time is up or the
   * client ended the watch. Rejects with WatchCanceledError, the Watch call's RpcError, or UNAVAILABLE.
   */
  nextEvent(timeout?: number | null): Promise<WatchEvent | null>;
  /** for await: ends after cancel(); leaving the loop early cancels the watch. */
  [Symbol.asyncIterator](): AsyncIterator<WatchEvent>;
  /** CancelWatch (unless ended already); drops what was not read. NOT_FOUND is no error. */
  cancel(options?: CallOptions): Promise<void>;
  /** cancel(), never rejecting. */
  close(options?: CallOptions): Promise<void>;
  on(event: 'event', listener: (event: WatchEvent) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'end', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Which keys: [start, end) (no end: no upper bound), or those beginning with prefix (not both). */
export interface Selector {
  start?: BytesInput;
  end?: BytesInput;
  prefix?: BytesInput;
}

export interface RangePageQuery extends Selector {
  /** At most this many keys; 0 or absent: the server's maximum page. */
  limit?: number;
  /** Values left empty. */
  keysOnly?: boolean;
  /** Descending order. */
  reverse?: boolean;
}

export interface RangeQuery extends Selector {
  /** The most keys to yield in all (absent, null or 0: all, as the wire's limit 0). */
  limit?: number | null;
  /** Keys per Range call (default 0: the server's maximum page). */
  pageSize?: number;
  keysOnly?: boolean;
  reverse?: boolean;
}

/** One Range answer. */
export interface Page {
  /** In byte order (memcmp, shorter first on a tie), or descending with reverse. */
  entries: Entry[];
  /** More keys of the range follow this page. */
  more: boolean;
  /** Keys in the whole range, not just this page. */
  count: number;
  /** The store's revision at the read. */
  revision: number;
}

export interface ClearOptions extends CallOptions {
  /**
   * Clear only if the key's mod_revision is this (0: only if absent); else FailedPreconditionError.
   * A server before protocol v2 clears without the check: an RpcError UNIMPLEMENTED then.
   */
  ifModRevision?: number;
}

/** A key's target, waiting for its comparison (kvstore.compare.*). */
export interface Compared {
  equal(operand: BytesInput | number): TxnCompare;
  notEqual(operand: BytesInput | number): TxnCompare;
  /** Holds when the key's target is less than the operand. */
  less(operand: BytesInput | number): TxnCompare;
  /** Holds when the key's target is greater than the operand. */
  greater(operand: BytesInput | number): TxnCompare;
}
/** A Compare made by kvstore.compare.*. */
export interface TxnCompare extends Compare { readonly __txnCompare?: never }
/** A TxnOp made by kvstore.op.*. */
export interface TxnOperation extends TxnOp { readonly __txnOperation?: never }

/** The targets of a Txn compare. A missing key has revisions and version 0; VALUE compares on it are false. */
export const compare: {
  /** The key's value, compared as bytes (operand: bytes or string). */
  value(key: BytesInput): Compared;
  modRevision(key: BytesInput): Compared;
  createRevision(key: BytesInput): Compared;
  version(key: BytesInput): Compared;
};

/** The operations of a Txn; each result is what the matching helper returns. */
export const op: {
  /** Result: Entry, or null for a missing key. */
  get(key: BytesInput): TxnOperation;
  /** Result: the revision written. */
  set(key: BytesInput, value: BytesInput, options?: TtlOptions): TxnOperation;
  /** Result: the old value, or null when absent. */
  clear(key: BytesInput): TxnOperation;
  /** One page; result: Page. */
  range(query?: RangePageQuery & { countOnly?: boolean }): TxnOperation;
  /** Result: how many keys were removed. */
  clearRange(query?: Selector): TxnOperation;
};

/** What Txn.commit() resolves with. */
export interface TxnResult {
  /** Every compare held: the "then" ops ran (else the "else" ops). */
  succeeded: boolean;
  /** One per op run, in order: Entry | null, revision, old value | null, Page, or keys removed. */
  results: Array<Entry | Page | Buffer | number | null>;
  /** The store's revision after the Txn (all its writes make this one). */
  revision: number;
  /** The TxnResponse message itself. */
  response: TxnResponse;
}

/** A Txn being built: client.txn().if(...).then(...).else(...).commit(). Not a promise: call commit(). */
export class Txn {
  readonly compares: Compare[];
  readonly success: TxnOp[];
  readonly failure: TxnOp[];
  /** Adds compares; all must hold (none at all holds). */
  if(...compares: Compare[]): this;
  /** Adds ops to run when every compare holds. */
  then(...ops: TxnOp[]): this;
  /** Adds ops to run otherwise. */
  else(...ops: TxnOp[]): this;
  request(): TxnRequest;
  /** Sends it; rejects with INVALID_ARGUMENT (nothing applied) for a refused Txn. */
  commit(options?: CallOptions): Promise<TxnResult>;
}

/** What loadProto() returns. */
export interface Proto {
  path: string;
  root: Root;
  service: Service;
  methods: Method[];
  RpcRequest: Type;
  RpcResponse: Type;
  StatusCode: Enum;
  methodPath(method: Method): string;
}

/** A connection to one kvstored; every method rejects with RpcError. */
export class Client {
  /** The "HOST:PORT" connected to, or tried last. */
  readonly endpoint: string;
  /** The 16 bytes every write of this client carries (RpcRequest.client_id). */
  readonly clientId: Buffer;
  readonly service: Service;
  readonly proto: Proto;
  /** Default per-call timeout in ms. */
  timeout: number;
  /** True once close() ran or the connection was lost. */
  readonly closed: boolean;

  /** Closes the connection; calls in flight reject with UNAVAILABLE. */
  close(): Promise<void>;

  Ping(request?: PingRequest, options?: CallOptions): Promise<PingResponse>;
  Get(request: GetRequest, options?: CallOptions): Promise<GetResponse>;
  Set(request: SetRequest, options?: CallOptions): Promise<SetResponse>;
  Clear(request: ClearRequest, options?: CallOptions): Promise<ClearResponse>;
  Stats(request?: StatsRequest, options?: CallOptions): Promise<StatsResponse>;
  Auth(request: AuthRequest, options?: CallOptions): Promise<AuthResponse>;
  Range(request?: RangeRequest, options?: CallOptions): Promise<RangeResponse>;
  ClearRange(request: ClearRangeRequest, options?: CallOptions): Promise<ClearRangeResponse>;
  Txn(request: TxnRequest, options?: CallOptions): Promise<TxnResponse>;
  Touch(request: TouchRequest, options?: CallOptions): Promise<TouchResponse>;
  /** The raw rpc: its stream frames are dropped (use watch()). */
  Watch(request: WatchRequest, options?: CallOptions): Promise<WatchResponse>;
  CancelWatch(request: CancelWatchRequest, options?: CallOptions): Promise<CancelWatchResponse>;
  /** Any rpc of the loaded service, by name. */
  call(name: string, request?: object, options?: CallOptions): Promise<any>;
  /** A method path and a serialized request; resolves with the serialized answer. */
  invoke(method: string, payload: Uint8Array, options?: CallOptions): Promise<Buffer>;
  /** A hand-built envelope; resolves with the RpcResponse whatever its code. */
  exchange(envelope: RpcRequestEnvelope, options?: CallOptions): Promise<RpcResponse>;

  /** "PONG", or the message echoed. */
  ping(message?: string, options?: CallOptions): Promise<string>;
  /** The value; rejects with KeyNotFoundError when absent. */
  get(key: BytesInput, options?: ReadOptions): Promise<Buffer>;
  /** With ttlMs the key expires; without, it loses any TTL unless keepTtl. */
  set(key: BytesInput, value: BytesInput, options?: SetOptions): Promise<void>;
  /** Sets the key's TTL to ttlMs from now (0: none); false when the key is missing or expired. */
  touch(key: BytesInput, ttlMs: number, options?: CallOptions): Promise<boolean>;
  /** Watches a key, range or prefix; the Watch call is sent at once. */
  watch(query: WatchQuery, options?: CallOptions): Watch;
  /** The old value, or null when the key was absent. With ifModRevision: a conditional clear. */
  clear(key: BytesInput, options?: ClearOptions): Promise<Buffer | null>;
  auth(token: BytesInput, options?: CallOptions): Promise<void>;

  /** The value with its revisions; rejects with KeyNotFoundError when absent. */
  getEntry(key: BytesInput, options?: ReadOptions): Promise<Entry>;
  /**
   * Sets only if the key's mod_revision is modRevision (0: only if absent). Resolves with the
   * revision written; rejects with FailedPreconditionError otherwise, and with an RpcError
   * UNIMPLEMENTED when a server before protocol v2 wrote without the check.
   */
  cas(key: BytesInput, value: BytesInput, modRevision: number, options?: SetOptions): Promise<number>;
  /** The keys of a range or prefix, paged transparently: for await (const e of client.range({ prefix })). */
  range(query?: RangeQuery, options?: CallOptions): AsyncGenerator<Entry, void, undefined>;
  /** One Range call. */
  rangePage(query?: RangePageQuery, options?: ReadOptions): Promise<Page>;
  /** How many keys the selector holds (no selector: every key). */
  count(query?: Selector, options?: ReadOptions): Promise<number>;
  /** Removes the keys of the selector as one write; resolves with how many. No selector: INVALID_ARGUMENT. */
  clearRange(query: Selector, options?: CallOptions): Promise<number>;
  /** A Txn builder. */
  txn(): Txn;
}

/** Connects to "HOST:PORT" (default "127.0.0.1:7379"). */
/** ENDPOINT: "HOST:PORT", several comma-separated, or an array (a cluster). */
export function connect(endpoint?: string | string[], options?: ConnectOptions): Promise<Client>;
export function loadProto(path?: string): Proto;
export function parseEndpoint(endpoint?: string): { host: string; port: number };
/** The first key after every key that begins with prefix (empty: no upper bound). */
export function prefixEnd(prefix: BytesInput): Buffer;
/** The kv.proto shipped with this module: the packed copy, else the source tree's. */
export const DEFAULT_PROTO_PATH: string;
export const DEFAULT_TIMEOUT: number;
