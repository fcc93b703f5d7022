/* wirecheck.c - see wirecheck.h. Walks protobuf fields without decoding. */
#include "wirecheck.h"
#include "varint.h"

int kv_wire_stricter_than_protobuf_c(const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    uint64_t key, v;

    /* A cut-off or over-long varint is something else going wrong first. */
    while (p < end) {
        if (kv_varint_get(&p, end, KV_VARINT_MAX, &key) < 0)
            return 0;
        if (key > UINT32_MAX || key >> 3 == 0)
            return 1;
        switch (key & 7) {
        case 0:
            if (kv_varint_get(&p, end, KV_VARINT_MAX, &v) < 0)
                return 0;
            break;
        case 1:
        case 5: {
            size_t skip = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < skip)
                return 0;
            p += skip;
            break;
        }
        case 2:
            if (kv_varint_get(&p, end, KV_VARINT_MAX, &v) < 0 || v > (uint64_t)(end - p))
                return 0;
            p += v;
            break;
        default:
            return 0;
        }
    }
    return 0;
}
