/* token.h - the one reader of token files (kvstored --auth-token-file,
 * kv_client_auth_file, kvctl --token-file), so that server and clients
 * agree on what a file's token is. */
#ifndef KV_TOKEN_H
#define KV_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* Longest token, in bytes. */
#define KV_TOKEN_MAX 4095

/* Reads the token in PATH: the file's first line, up to the first '\n' or
 * the end of the file, with one '\r' before it dropped (CRLF files); what
 * follows the first line is ignored. The token is 1 to KV_TOKEN_MAX bytes
 * of anything but '\n'. PATH must be a regular file: a FIFO, socket,
 * device or directory is refused at once, never waited on. Fills
 * TOKEN[0..*LEN) and returns 0, or returns -1 with a one-line reason in
 * ERR that holds none of the token. The caller owns TOKEN and wipes it
 * with sodium_memzero once done; the reader's own copies are wiped. */
int kv_token_read(const char *path, uint8_t token[KV_TOKEN_MAX], size_t *len,
                  char *err, size_t errlen);

#endif
