/* The native loop of pcapvec: a batch's frames to IP columns (link layer, IPv4/IPv6, ports,
 * TCP flags, payload bounds), exactly as the numpy `pcapvec._numpy_columns` (its reference,
 * ~0.1 s a million packets; this loop ~0.02 s). See native.py for the speed requirement.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_native.h"

/* A byte of the buffer, 0 past its end (as pcapvec._take reads). */
static inline unsigned at8(const unsigned char *b, int64_t len, int64_t i) {
    return (i >= 0 && i < len) ? b[i] : 0;
}
static inline int64_t at16(const unsigned char *b, int64_t len, int64_t i) {
    return ((int64_t)at8(b, len, i) << 8) | at8(b, len, i + 1);
}
static inline uint64_t at_be(const unsigned char *b, int64_t len, int64_t i, int bytes) {
    uint64_t x = 0;
    for (int k = 0; k < bytes; k++)
        x = (x << 8) | at8(b, len, i + k);
    return x;
}

/* linklayer.link_offsets for one frame: the IP header's offset from the frame start, -1
 * without IP, -2 for the scalar decoder (more VLAN tags than `vlan_columns`). */
static int64_t link_offset(const unsigned char *b, int64_t len, int64_t s, int64_t flen,
                           int ip_at, int etype_at, int vlan, int bsd, int vlan_columns,
                           const unsigned char *vlan_table, const unsigned char *ip_etype) {
    if (bsd) {
        int64_t fam = (int64_t)at8(b, len, s) | (int64_t)at8(b, len, s + 1) << 8
                      | (int64_t)at8(b, len, s + 2) << 16 | (int64_t)at8(b, len, s + 3) << 24;
        if (fam > 0xFFFF)
            fam = (int64_t)at_be(b, len, s, 4);
        int ok = flen >= 4 && (fam == 2 || fam == 10 || fam == 24 || fam == 28 || fam == 30);
        return ok ? 4 : -1;
    }
    if (etype_at < 0)
        return 0;
    int64_t etype = at16(b, len, s + etype_at);
    int ok = flen >= ip_at;
    int64_t l3 = ip_at;
    int tagged = vlan && vlan_table[etype];
    if (vlan) {
        for (int k = 0; k < vlan_columns && tagged; k++) {
            int64_t a = ip_at + 4 * k;
            ok = ok && flen >= a + 4;
            etype = at16(b, len, s + a + 2);
            l3 = a + 4;
            tagged = ok && vlan_table[etype];
        }
    }
    if (tagged)
        return -2;
    return ok && ip_etype[etype] ? l3 : -1;
}

/* frame_columns(buf, starts, ends, *link, *tables, i4, a4, i6, s6, d6, slow) -> (n4, n6, nslow):
 * pcapvec._numpy_columns (its reference) one frame at a time. link = ip_at, etype_at, vlan,
 * bsd, vlan_columns; tables = VLAN ethertypes [65536], IP ethertypes [65536], IPv6 next
 * headers for the scalar decoder [256], protocols with ports [256], one byte each (flat
 * arguments: CPython's cleanup list of buffers does not count those inside a nested tuple). Outputs (native, writable, n = len(starts)):
 * i4, i6: int64 [7][n] rows of (frame, proto, sport, dport, tcp flags, payload start,
 * payload end); a4: uint64 [2][n] (src, dst); s6, d6: uint64 [n][2]; slow: int64 [n],
 * the frames the scalar decoder reads. */
PyObject *frame_columns(PyObject *self, PyObject *args) {
    Py_buffer view, sv, ev, t1, t2, t3, t4, o[6];
    int ip_at, etype_at, vlan, bsd, vcols;
    if (!PyArg_ParseTuple(args, "y*y*y*iiiiiy*y*y*y*w*w*w*w*w*w*", &view, &sv, &ev,
                          &ip_at, &etype_at, &vlan, &bsd, &vcols, &t1, &t2, &t3, &t4,
                          &o[0], &o[1], &o[2], &o[3], &o[4], &o[5]))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = sv.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t need[6] = {7 * n * 8, 2 * n * 8, 7 * n * 8, 2 * n * 8, 2 * n * 8, n * 8};
    int bad = ev.len != sv.len || t1.len < 65536 || t2.len < 65536 || t3.len < 256
              || t4.len < 256;
    for (int k = 0; k < 6; k++)
        bad = bad || o[k].len < need[k];
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "frame_columns: arrays of the wrong size");
        goto done;
    }
    const unsigned char *b = view.buf, *vlan_table = t1.buf, *ip_etype = t2.buf,
                        *v6_slow = t3.buf, *port_proto = t4.buf;
    const int64_t *st = sv.buf, *en = ev.buf;
    int64_t *i4 = o[0].buf, *i6 = o[2].buf, *slow = o[5].buf;
    uint64_t *a4 = o[1].buf, *s6 = o[3].buf, *d6 = o[4].buf;
    int64_t len = view.len;
    Py_ssize_t n4 = 0, n6 = 0, ns = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = st[i], e = en[i], flen = e - s;
        int64_t l3 = link_offset(b, len, s, flen, ip_at, etype_at, vlan, bsd, vcols,
                                 vlan_table, ip_etype);
        if (l3 == -2) {
            slow[ns++] = i;
            continue;
        }
        if (l3 < 0)
            continue;
        int64_t avail = flen - l3, ip = s + l3;
        unsigned ver = at8(b, len, ip) >> 4;
        int64_t proto, sport = 0, dport = 0, l4, tend, first = 1;
        if (ver == 4 && avail >= 20) {
            proto = at8(b, len, ip + 9);
            int64_t frag = ((int64_t)(at8(b, len, ip + 6) & 0x1F) << 8) | at8(b, len, ip + 7);
            int64_t ihl = (int64_t)(at8(b, len, ip) & 15) << 2;
            if (frag == 0 && port_proto[proto] && ihl + 4 <= avail) {
                sport = at16(b, len, ip + ihl);
                dport = at16(b, len, ip + ihl + 2);
            }
            int64_t total = at16(b, len, ip + 2);
            tend = (total >= 20 && total < avail) ? ip + total : e;
            l4 = ip + ihl;
            first = frag == 0;
        } else if (ver == 6 && avail >= 40) {
            proto = at8(b, len, ip + 6);
            if (v6_slow[proto]) {
                slow[ns++] = i;
                continue;
            }
            if (port_proto[proto] && avail >= 44) {
                sport = at16(b, len, ip + 40);
                dport = at16(b, len, ip + 42);
            }
            int64_t plen = at16(b, len, ip + 4);
            tend = (plen > 0 && plen + 40 < avail) ? ip + 40 + plen : e;
            l4 = ip + 40;
        } else {
            continue;
        }
        int tcp = proto == 6 && l4 + 20 <= tend && first;
        int udp = proto == 17 && l4 + 8 <= tend && first;
        int64_t flags = 0, poff = -1;
        if (tcp) {
            int64_t doff = at8(b, len, l4 + 12);
            tcp = doff >= 0x50;
            if (tcp) {
                flags = at8(b, len, l4 + 13);
                poff = l4 + ((doff >> 4) << 2);
            }
        }
        if (!tcp && udp)
            poff = l4 + 8;
        int64_t row[7] = {i, proto, sport, dport, flags, poff, tend};
        if (ver == 4) {
            for (int k = 0; k < 7; k++)
                i4[k * n + n4] = row[k];
            a4[n4] = at_be(b, len, ip + 12, 4);
            a4[n + n4] = at_be(b, len, ip + 16, 4);
            n4++;
        } else {
            for (int k = 0; k < 7; k++)
                i6[k * n + n6] = row[k];
            s6[2 * n6] = at_be(b, len, ip + 8, 8);
            s6[2 * n6 + 1] = at_be(b, len, ip + 16, 8);
            d6[2 * n6] = at_be(b, len, ip + 24, 8);
            d6[2 * n6 + 1] = at_be(b, len, ip + 32, 8);
            n6++;
        }
    }
    result = Py_BuildValue("nnn", n4, n6, ns);
done:
    PyBuffer_Release(&view);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&ev);
    PyBuffer_Release(&t1);
    PyBuffer_Release(&t2);
    PyBuffer_Release(&t3);
    PyBuffer_Release(&t4);
    for (int k = 0; k < 6; k++)
        PyBuffer_Release(&o[k]);
    return result;
}

