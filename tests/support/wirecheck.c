/* wirecheck.c - see wirecheck.h. Walks protobuf fields without decoding. */
#include "wirecheck.h"

/* Reads a varint of at most 10 bytes at BUF[*I]; returns its value. */
static uint64_t varint(const uint8_t *buf, size_t len, size_t *i)
{
    uint64_t v = 0;

    for (unsigned shift = 0; *i < len && shift < 70; shift += 7) {
        v |= (uint64_t)(buf[*i] & 0x7f) << shift;
        if (!(buf[(*i)++] & 0x80))
            break;
    }
    return v;
}

int kv_wire_stricter_than_protobuf_c(const uint8_t *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint64_t key = varint(buf, len, &i);
        if (key > UINT32_MAX || key >> 3 == 0)
            return 1;
        switch (key & 7) {
        case 0: varint(buf, len, &i); break;
        case 1: i += 8; break;
        case 5: i += 4; break;
        case 2: {
            uint64_t n = varint(buf, len, &i);
            if (i > len || n > len - i)
                return 0;
            i += n;
            break;
        }
        default: return 0;
        }
    }
    return 0;
}
