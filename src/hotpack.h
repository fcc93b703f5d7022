/* hotpack.h - packers written by hand for the hot answers (hotpack.c). */
#ifndef KV_HOTPACK_H
#define KV_HOTPACK_H

/* ON: pbview packs GetResponse and SetResponse with the hand-written
 * packers from now on (kv_service_init does this); 0: by their plans again
 * (for tests that compare both). */
void kv_hotpack_use(int on);

#endif /* KV_HOTPACK_H */
