// index.d.ts - TypeScript types for the public surface of the kvstore
// Node.js client (hand-written; index.js and lib/ are the code). The rpc
// methods below mirror proto/kvstore/v1/kv.proto; an rpc added there later
// is callable at once as client.call('Name', request) (or client.Name in JS).
/// <reference types="node" />
import type { Long, Service, Root, Type, Enum, Method } from 'protobufjs';

/** Options of one call. */
export interface CallOptions {
  /** Milliseconds before the call fails with DEADLINE_EXCEEDED; 0: none. Default: the client's. */
  timeout?: number;
}

export interface ConnectOptions {
  /** Default per-call timeout in ms (5000); 0: none. */
  timeout?: number;
  /** Connect timeout in ms (default: timeout, or 5000). */
  connectTimeout?: number;
  /** The kv.proto to load (default $KVSTORE_PROTO, else ../../proto/kvstore/v1/kv.proto). */
  protoPath?: string;
  /** Sent with Auth right after connecting (servers with --auth-token-file). */
  token?: string | Uint8Array;
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
}
export interface SetRequest {
  key?: BytesInput;
  value?: BytesInput;
  /** Write only if the key's mod_revision is this (0: only if absent); leave out for none. */
  if_mod_revision?: number | Long;
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
}

/** A hand-built envelope for Client.exchange(); the client assigns the id. */
export interface RpcRequestEnvelope { method: string; payload?: Uint8Array }
/** The server's envelope, whatever its code. */
export interface RpcResponse { id: number; code: number; message: string; payload: Buffer }

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
  set(key: BytesInput, value: BytesInput): TxnOperation;
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
  readonly endpoint: string;
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
  /** Any rpc of the loaded service, by name. */
  call(name: string, request?: object, options?: CallOptions): Promise<any>;
  /** A method path and a serialized request; resolves with the serialized answer. */
  invoke(method: string, payload: Uint8Array, options?: CallOptions): Promise<Buffer>;
  /** A hand-built envelope; resolves with the RpcResponse whatever its code. */
  exchange(envelope: RpcRequestEnvelope, options?: CallOptions): Promise<RpcResponse>;

  /** "PONG", or the message echoed. */
  ping(message?: string, options?: CallOptions): Promise<string>;
  /** The value; rejects with KeyNotFoundError when absent. */
  get(key: BytesInput, options?: CallOptions): Promise<Buffer>;
  set(key: BytesInput, value: BytesInput, options?: CallOptions): Promise<void>;
  /** The old value, or null when the key was absent. With ifModRevision: a conditional clear. */
  clear(key: BytesInput, options?: ClearOptions): Promise<Buffer | null>;
  auth(token: BytesInput, options?: CallOptions): Promise<void>;

  /** The value with its revisions; rejects with KeyNotFoundError when absent. */
  getEntry(key: BytesInput, options?: CallOptions): Promise<Entry>;
  /**
   * Sets only if the key's mod_revision is modRevision (0: only if absent). Resolves with the
   * revision written; rejects with FailedPreconditionError otherwise, and with an RpcError
   * UNIMPLEMENTED when a server before protocol v2 wrote without the check.
   */
  cas(key: BytesInput, value: BytesInput, modRevision: number, options?: CallOptions): Promise<number>;
  /** The keys of a range or prefix, paged transparently: for await (const e of client.range({ prefix })). */
  range(query?: RangeQuery, options?: CallOptions): AsyncGenerator<Entry, void, undefined>;
  /** One Range call. */
  rangePage(query?: RangePageQuery, options?: CallOptions): Promise<Page>;
  /** How many keys the selector holds (no selector: every key). */
  count(query?: Selector, options?: CallOptions): Promise<number>;
  /** Removes the keys of the selector as one write; resolves with how many. No selector: INVALID_ARGUMENT. */
  clearRange(query: Selector, options?: CallOptions): Promise<number>;
  /** A Txn builder. */
  txn(): Txn;
}

/** Connects to "HOST:PORT" (default "127.0.0.1:7379"). */
export function connect(endpoint?: string, options?: ConnectOptions): Promise<Client>;
export function loadProto(path?: string): Proto;
export function parseEndpoint(endpoint?: string): { host: string; port: number };
/** The first key after every key that begins with prefix (empty: no upper bound). */
export function prefixEnd(prefix: BytesInput): Buffer;
export const DEFAULT_PROTO_PATH: string;
export const DEFAULT_TIMEOUT: number;
