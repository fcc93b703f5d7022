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
export interface GetResponse { value: Buffer }
export interface SetRequest { key?: BytesInput; value?: BytesInput }
export interface SetResponse { key: Buffer }
export interface ClearRequest { key?: BytesInput }
export interface ClearResponse { found: boolean; value: Buffer }
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
  /** The old value, or null when the key was absent. */
  clear(key: BytesInput, options?: CallOptions): Promise<Buffer | null>;
  auth(token: BytesInput, options?: CallOptions): Promise<void>;
}

/** Connects to "HOST:PORT" (default "127.0.0.1:7379"). */
export function connect(endpoint?: string, options?: ConnectOptions): Promise<Client>;
export function loadProto(path?: string): Proto;
export function parseEndpoint(endpoint?: string): { host: string; port: number };
export const DEFAULT_PROTO_PATH: string;
export const DEFAULT_TIMEOUT: number;
