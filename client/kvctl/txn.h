/* txn.h - the words of 'kvctl txn' (compares, then, operations, else,
 * operations) turned into a TxnRequest, and the names of its operations. */
#ifndef KVCTL_TXN_H
#define KVCTL_TXN_H

#include <kvstore/client.h>
#include "kvctl.h"

/* Parses WORDS[0..N), the words after "txn":
 *     [--] [COMPARE...] then [OP...] [else [OP...]]
 *     COMPARE: value|mod|create|version KEY =|==|!=|<|> OPERAND
 *     OP:      get KEY | set KEY VALUE | clear KEY | range START END |
 *              get-prefix PREFIX | clear-range START END | clear-prefix PREFIX
 * (the command's help, in cmd.c, is the reference). A bare "then" or
 * "else" where an operand is due is an error naming the missing operand;
 * "\then" and "\else" (one backslash more than meant) are the operands
 * themselves. Returns 0 and sets *OUT to a request the caller frees with
 * kvctl_txn_free(), or -1 with a one-line reason starting with "txn: " in
 * ERR and *OUT NULL. */
int kvctl_txn_parse(const kvctl_bytes *words, int n, Kvstore__V1__TxnRequest **out,
                    char *err, size_t errlen);

/* Splits TEXT[0..LEN) into words as the shell splits a line (args.h),
 * newlines being blanks, then kvctl_txn_parse(). Same returns. */
int kvctl_txn_parse_text(const uint8_t *text, size_t len, Kvstore__V1__TxnRequest **out,
                         char *err, size_t errlen);

/* Frees a request of kvctl_txn_parse(). Accepts NULL. */
void kvctl_txn_free(Kvstore__V1__TxnRequest *txn);

/* The name of OP in the txn syntax ("get", "get-prefix", "clear-range");
 * a static string. */
const char *kvctl_txn_op_name(const Kvstore__V1__TxnOp *op);

#endif
