/* Recognising a DICOM dataset stored without the Part 10 header (no 128-byte
 * preamble, no "DICM"): older archives and some exports write the bare
 * dataset, which DCMTK reads by guessing the transfer syntax. Header-only so
 * that the library's detector (lib/image_load.c) and the CLI's file discovery
 * (cli/common.c) apply the same rule. Internal: nothing here is exported.
 *
 * The rule is conservative, so that PNG, JPEG and random bytes are not taken
 * for DICOM: the first two data elements must both be readable from head, in
 * little-endian byte order (PS3.5 7.1), each with
 *   - a tag whose group is 0x0002 (file meta) or 0x0008 (identification) for
 *     the first element, and for the second a larger tag of an even group up
 *     to 0x0028 (elements are stored in ascending tag order, PS3.5 7.1);
 *   - explicit VR: one of the VRs of PS3.5 table 6.2-1 (the long ones with
 *     two zero bytes before a 32-bit length), or implicit VR: a 32-bit
 *     length; the same encoding for both elements;
 *   - an even length (PS3.5 7.1.1), or the undefined length 0xFFFFFFFF of a
 *     sequence for the second element.
 * Big-endian bare datasets and ones whose first element does not fit in
 * head are not recognised (they load when given the Part 10 header). */
#ifndef FX_DICOM_SNIFF_H
#define FX_DICOM_SNIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t fx__sniff_u16le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static inline uint32_t fx__sniff_u32le(const uint8_t *p)
{
    return fx__sniff_u16le(p) | fx__sniff_u16le(p + 2) << 16;
}

/* 0: not a VR; 1: a VR with a 16-bit length; 2: a VR with two reserved bytes
 * and a 32-bit length (PS3.5 7.1.2). */
static inline int fx__sniff_vr_kind(const uint8_t *p)
{
    static const char short_vrs[] = "AEASATCSDADSDTFLFDISLOLTPNSHSLSSSTTMUIULUS";
    static const char long_vrs[] = "OBODOFOLOVOWSQSVUCURUTUNUV";
    for (size_t i = 0; i + 1 < sizeof short_vrs; i += 2)
        if (p[0] == (uint8_t)short_vrs[i] && p[1] == (uint8_t)short_vrs[i + 1])
            return 1;
    for (size_t i = 0; i + 1 < sizeof long_vrs; i += 2)
        if (p[0] == (uint8_t)long_vrs[i] && p[1] == (uint8_t)long_vrs[i + 1])
            return 2;
    return 0;
}

/* Whether head[0..n) starts like a bare little-endian DICOM dataset (see
 * above). */
static inline bool fx__dicom_bare_dataset_detect(const uint8_t *head, size_t n)
{
    size_t pos = 0;
    uint32_t previous = 0;
    int explicit_vr = -1; /* decided by the first element */
    for (int seen = 0; seen < 2; seen++) {
        if (n < 8 || pos > n - 8)
            return false;
        uint32_t group = fx__sniff_u16le(head + pos), tag = group << 16 | fx__sniff_u16le(head + pos + 2);
        bool tag_ok = seen == 0 ? (group == 0x0002 || group == 0x0008)
                                : (tag > previous && group <= 0x0028 && (group & 1) == 0);
        if (!tag_ok)
            return false;
        int kind = fx__sniff_vr_kind(head + pos + 4);
        if (explicit_vr < 0)
            explicit_vr = kind != 0;
        if ((kind != 0) != (explicit_vr != 0))
            return false;
        size_t header = 8;
        uint32_t length;
        if (kind == 2) {
            if (pos > n - 12 || head[pos + 6] != 0 || head[pos + 7] != 0)
                return false;
            length = fx__sniff_u32le(head + pos + 8);
            header = 12;
        } else if (kind == 1) {
            length = fx__sniff_u16le(head + pos + 6);
        } else {
            length = fx__sniff_u32le(head + pos + 4);
        }
        if (seen == 1)
            return length == 0xffffffffu || length % 2 == 0;
        if (length % 2 != 0 || length > n)
            return false;
        previous = tag;
        pos += header + length;
    }
    return false;
}

#endif
