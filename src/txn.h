/* txn.h - Txn, the data model's atomic compare-then-write (txn.c). */
#ifndef KV_TXN_H
#define KV_TXN_H

#include "ops.h"

/* Runs the Txn IN on OP's engine (OP from kv_op_init; this sets in_txn):
 * every compare and operation checked first, the compares evaluated on one
 * state, then the success or the failure branch, its writes all at
 * op->rev, in one engine batch. KV_OK with OUT filled (its results and
 * their bytes in op->alloc), or an error with op->why and nothing changed:
 * KV_INVALID_ARGUMENT for a bad request (an operation over a limit, a key
 * written twice, a conditional write, more than KV_TXN_MAX_COMPARES
 * compares or KV_TXN_MAX_OPS operations in a branch), or what an operation
 * or the engine failed with. */
kv_status kv_txn_run(kv_op *op, const Kvstore__V1__TxnRequest *in, Kvstore__V1__TxnResponse *out);

#endif /* KV_TXN_H */
