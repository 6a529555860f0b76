/* The fast capture path's native loops: the record-header walk, the payload gather,
 * the ClientHello SNI walk and the first-seen filter of DNS responses (see native.py, which holds their Python references and the speed requirement).
 *
 * Why native code: the whole analyze stage must run at >= 1 M packets/s and >= 0.25x
 * `tcpdump -r FILE -w /dev/null` (issue 10). The walk in Python costs ~0.5 us per record
 * (about 0.2 s of the 1.2 s a 1 M-packet analysis took); here it is ~10 ns.
 *
 * The walks only collect record offsets, exactly as the Python references do (same
 * stopping rules, same offsets); every check on the records (lengths, limits, trailers,
 * interfaces) stays in numpy, so damage handling is shared.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t u32(const unsigned char *p, int big) {
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* kind 0: classic pcap records (16-byte headers, captured length at +8);
 * kind 1: a run of pcapng enhanced packet blocks (type 6; total length at +4). */
static PyObject *walk(PyObject *args, int kind) {
    Py_buffer view;
    Py_ssize_t pos, count;
    int big;
    if (!PyArg_ParseTuple(args, "y*nnp", &view, &pos, &count, &big))
        return NULL;
    if (pos < 0 || count < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "negative position or count");
        return NULL;
    }
    int64_t *out = PyMem_Malloc(((size_t)count + 1) * sizeof(int64_t));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    const unsigned char *buf = view.buf;
    int64_t len = view.len, p = pos;
    Py_ssize_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    if (kind == 0) {
        while (n < count) {
            out[n++] = p;
            if (p + 12 > len)
                break;
            p += 16 + (int64_t)u32(buf + p + 8, big);
        }
    } else {
        while (n < count) {
            if (p + 8 > len || u32(buf + p, big) != 6)
                break;
            out[n++] = p;
            p += (int64_t)u32(buf + p + 4, big);
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *result = PyBytes_FromStringAndSize((const char *)out, n * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(out);
    return result;
}

static PyObject *pcap_offsets(PyObject *self, PyObject *args) { return walk(args, 0); }
static PyObject *pcapng_offsets(PyObject *self, PyObject *args) { return walk(args, 1); }

/* The (buf, starts, ends) arguments of gather and snis: starts and ends are native int64
 * buffers of one length. Returns how many ranges; NO_ARGS (nothing held) or BAD_RANGES (the
 * buffers held, to be released) with the error set. */
enum { NO_ARGS = -2, BAD_RANGES = -1 };

static Py_ssize_t ranges(PyObject *args, Py_buffer *view, Py_buffer *sv, Py_buffer *ev) {
    if (!PyArg_ParseTuple(args, "y*y*y*", view, sv, ev))
        return NO_ARGS;
    if (ev->len != sv->len || sv->len % (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "starts and ends must be int64 arrays of one length");
        return BAD_RANGES;
    }
    return sv->len / (Py_ssize_t)sizeof(int64_t);
}

static void release_ranges(Py_buffer *view, Py_buffer *sv, Py_buffer *ev) {
    PyBuffer_Release(view);
    PyBuffer_Release(sv);
    PyBuffer_Release(ev);
}

/* gather(buf, starts, ends) -> bytes: buf[starts[0]:ends[0]] + buf[starts[1]:ends[1]] + ...
 * (starts, ends: native int64 buffers of offsets >= 0; an empty or inverted range adds
 * nothing, and a range is clipped to the buffer, as Python slicing does). */
static PyObject *gather(PyObject *self, PyObject *args) {
    Py_buffer view, sv, ev;
    Py_ssize_t n = ranges(args, &view, &sv, &ev);
    if (n == NO_ARGS)
        return NULL;
    PyObject *result = NULL;
    if (n < 0)
        goto done;
    const int64_t *st = sv.buf, *en = ev.buf;
    int64_t len = view.len, total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = st[i] < 0 ? 0 : (st[i] > len ? len : st[i]);
        int64_t b = en[i] < 0 ? 0 : (en[i] > len ? len : en[i]);
        if (b > a)
            total += b - a;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (result == NULL)
        goto done;
    char *out = PyBytes_AS_STRING(result);
    const char *buf = view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = st[i] < 0 ? 0 : (st[i] > len ? len : st[i]);
        int64_t b = en[i] < 0 ? 0 : (en[i] > len ? len : en[i]);
        if (b > a) {
            memcpy(out, buf + a, (size_t)(b - a));
            out += b - a;
        }
    }
done:
    release_ranges(&view, &sv, &ev);
    return result;
}

/* The host_name SNI of one ClientHello handshake message b[0:n], exactly as
 * payloads.client_hello_sni (its reference): sets *at, *len; returns 0 when absent or
 * malformed (the reference's "" and its IndexError). */
static int hello_sni(const unsigned char *b, int64_t n, int64_t *at, int64_t *len) {
    if (n < 4 || b[0] != 1)
        return 0;
    int64_t p = 4 + 2 + 32;
    if (p >= n)
        return 0;
    p += 1 + b[p];
    if (p + 1 >= n)
        return 0;
    p += 2 + (((int64_t)b[p] << 8) | b[p + 1]);
    if (p >= n)
        return 0;
    p += 1 + b[p];
    if (p + 2 > n)
        return 0;
    int64_t ext_end = p + 2 + (((int64_t)b[p] << 8) | b[p + 1]);
    if (ext_end > n)
        ext_end = n;
    p += 2;
    while (p + 4 <= ext_end) {
        int64_t etype = ((int64_t)b[p] << 8) | b[p + 1];
        int64_t elen = ((int64_t)b[p + 2] << 8) | b[p + 3];
        p += 4;
        if (etype == 0) {
            int64_t q = p + 2, end = p + elen < ext_end ? p + elen : ext_end;
            while (q + 3 <= end) {
                int ntype = b[q];
                int64_t nlen = ((int64_t)b[q + 1] << 8) | b[q + 2];
                q += 3;
                if (ntype == 0 && q + nlen <= end) {
                    *at = q;
                    *len = nlen;
                    return 1;
                }
                q += nlen;
            }
            return 0;
        }
        p += elen;
    }
    return 0;
}

/* snis(buf, starts, ends) -> list: for each handshake message buf[start:end] (clipped to
 * the buffer, as slicing), its SNI's bytes, or None when it has none. */
static PyObject *snis(PyObject *self, PyObject *args) {
    Py_buffer view, sv, ev;
    Py_ssize_t n = ranges(args, &view, &sv, &ev);
    if (n == NO_ARGS)
        return NULL;
    PyObject *result = NULL;
    if (n < 0)
        goto done;
    const int64_t *st = sv.buf, *en = ev.buf;
    const unsigned char *buf = view.buf;
    int64_t len = view.len;
    result = PyList_New(n);
    if (result == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = st[i] < 0 ? 0 : (st[i] > len ? len : st[i]);
        int64_t b = en[i] < 0 ? 0 : (en[i] > len ? len : en[i]);
        int64_t at = 0, size = 0;
        PyObject *item;
        if (b > a && hello_sni(buf + a, b - a, &at, &size)) {
            item = PyBytes_FromStringAndSize((const char *)buf + a + at, (Py_ssize_t)size);
            if (item == NULL) {
                Py_CLEAR(result);
                goto done;
            }
        } else {
            item = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(result, i, item);
    }
done:
    release_ranges(&view, &sv, &ev);
    return result;
}

/* first_seen(buf, starts, ends, tags) -> bytes of native int64 row numbers: the rows whose
 * (tag, buf[start:end]) (clipped, as slicing) has not appeared in an earlier row, in row
 * order. Exact: equal hashes are confirmed byte by byte. */
static PyObject *first_seen(PyObject *self, PyObject *args) {
    Py_buffer view, sv, ev, tv;
    if (!PyArg_ParseTuple(args, "y*y*y*y*", &view, &sv, &ev, &tv))
        return NULL;
    PyObject *result = NULL;
    int64_t *table = NULL, *out = NULL;
    uint64_t *hashes = NULL;
    Py_ssize_t n = sv.len / (Py_ssize_t)sizeof(int64_t);
    if (ev.len != sv.len || tv.len != sv.len || sv.len % (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError,
                        "starts, ends and tags must be int64 arrays of one length");
        goto done;
    }
    size_t size = 16;
    while (size < 2 * (size_t)n)
        size <<= 1;
    table = PyMem_Malloc(size * sizeof(int64_t));
    hashes = PyMem_Malloc(((size_t)n + 1) * sizeof(uint64_t));
    out = PyMem_Malloc(((size_t)n + 1) * sizeof(int64_t));
    if (table == NULL || hashes == NULL || out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(table, 0xff, size * sizeof(int64_t)); /* -1: empty */
    const int64_t *st = sv.buf, *en = ev.buf, *tg = tv.buf;
    const unsigned char *buf = view.buf;
    int64_t len = view.len;
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = st[i] < 0 ? 0 : (st[i] > len ? len : st[i]);
        int64_t b = en[i] < 0 ? 0 : (en[i] > len ? len : en[i]);
        if (b < a)
            b = a;
        uint64_t h = 1469598103934665603ULL ^ (uint64_t)tg[i];
        for (int64_t k = a; k < b; k++)
            h = (h ^ buf[k]) * 1099511628211ULL;
        h ^= (uint64_t)(b - a) * 0x9E3779B97F4A7C15ULL;
        hashes[i] = h;
        size_t slot = (size_t)(h ^ (h >> 29)) & (size - 1);
        for (;;) {
            int64_t j = table[slot];
            if (j < 0) {
                table[slot] = i;
                out[found++] = i;
                break;
            }
            if (hashes[j] == h && tg[j] == tg[i]) {
                int64_t c = st[j] < 0 ? 0 : (st[j] > len ? len : st[j]);
                int64_t d = en[j] < 0 ? 0 : (en[j] > len ? len : en[j]);
                if (d < c)
                    d = c;
                if (d - c == b - a && memcmp(buf + a, buf + c, (size_t)(b - a)) == 0)
                    break; /* seen before */
            }
            slot = (slot + 1) & (size - 1);
        }
    }
    result = PyBytes_FromStringAndSize((const char *)out, found * (Py_ssize_t)sizeof(int64_t));
done:
    PyMem_Free(table);
    PyMem_Free(hashes);
    PyMem_Free(out);
    PyBuffer_Release(&view);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&ev);
    PyBuffer_Release(&tv);
    return result;
}


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
static PyObject *frame_columns(PyObject *self, PyObject *args) {
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

/* Rows of k uint64 words grouped by equal keys with an open-addressing hash table: gid[i]
 * gets the group of row i, numbered in order of first appearance; heads[g] the first row of
 * group g. Returns the number of groups, or -1 when out of memory. */
static Py_ssize_t group_rows(const uint64_t *keys, Py_ssize_t m, Py_ssize_t k, int64_t *gid,
                             int64_t *heads) {
    size_t size = 16;
    while (size < 2 * (size_t)m)
        size <<= 1;
    int64_t *table = PyMem_Malloc(size * sizeof(int64_t));
    if (table == NULL)
        return -1;
    memset(table, 0xff, size * sizeof(int64_t));
    Py_ssize_t groups = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        const uint64_t *key = keys + i * k;
        uint64_t h = 0x9E3779B97F4A7C15ULL;
        for (Py_ssize_t j = 0; j < k; j++) {
            h ^= key[j];
            h *= 0xFF51AFD7ED558CCDULL;
            h ^= h >> 32;
        }
        size_t slot = (size_t)h & (size - 1);
        for (;;) {
            int64_t g = table[slot];
            if (g < 0) {
                table[slot] = groups;
                heads[groups] = i;
                gid[i] = groups++;
                break;
            }
            if (memcmp(keys + heads[g] * k, key, (size_t)k * sizeof(uint64_t)) == 0) {
                gid[i] = g;
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
    }
    PyMem_Free(table);
    return groups;
}

/* group_ids(keys, k, gid, heads) -> groups: `group_rows` over keys (uint64 [m][k]); gid and
 * heads: writable int64 [m]. */
static PyObject *group_ids(PyObject *self, PyObject *args) {
    Py_buffer kv, gv, hv;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "y*nw*w*", &kv, &k, &gv, &hv))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t m = k > 0 ? kv.len / (Py_ssize_t)sizeof(uint64_t) / k : 0;
    if (k <= 0 || kv.len != m * k * (Py_ssize_t)sizeof(uint64_t)
        || gv.len < m * (Py_ssize_t)sizeof(int64_t) || hv.len < m * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "group_ids: arrays of the wrong size");
        goto done;
    }
    Py_ssize_t groups = group_rows(kv.buf, m, k, gv.buf, hv.buf);
    result = groups < 0 ? PyErr_NoMemory() : PyLong_FromSsize_t(groups);
done:
    PyBuffer_Release(&kv);
    PyBuffer_Release(&gv);
    PyBuffer_Release(&hv);
    return result;
}

/* group_reduce(keys, k, vals, first, last, heads, sums, lo, hi) -> groups: rows of equal
 * keys (uint64 [m][k]) reduced: heads[g] the first row of group g (in order of first
 * appearance), sums[g] the sum of its vals (int64 [m][2]), lo[g] the least of its first
 * (float64 [m]), hi[g] the greatest of its last (float64 [m]); outputs writable, m long. */
static PyObject *group_reduce(PyObject *self, PyObject *args) {
    Py_buffer kv, vv, fv, lv, hv, sv, lov, hiv;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*w*w*w*w*", &kv, &k, &vv, &fv, &lv, &hv, &sv, &lov,
                          &hiv))
        return NULL;
    PyObject *result = NULL;
    int64_t *gid = NULL;
    Py_ssize_t m = k > 0 ? kv.len / (Py_ssize_t)sizeof(uint64_t) / k : 0;
    Py_ssize_t w = (Py_ssize_t)sizeof(int64_t);
    if (k <= 0 || kv.len != m * k * w || vv.len != 2 * m * w || fv.len != m * w
        || lv.len != m * w || hv.len < m * w || sv.len < 2 * m * w || lov.len < m * w
        || hiv.len < m * w) {
        PyErr_SetString(PyExc_ValueError, "group_reduce: arrays of the wrong size");
        goto done;
    }
    gid = PyMem_Malloc(((size_t)m + 1) * sizeof(int64_t));
    if (gid == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t groups = group_rows(kv.buf, m, k, gid, hv.buf);
    if (groups < 0) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *vals = vv.buf;
    const double *first = fv.buf, *last = lv.buf;
    int64_t *sums = sv.buf;
    double *lo = lov.buf, *hi = hiv.buf;
    memset(sums, 0, (size_t)groups * 2 * sizeof(int64_t));
    for (Py_ssize_t g = 0; g < groups; g++) {
        int64_t r = ((int64_t *)hv.buf)[g];
        lo[g] = first[r];
        hi[g] = last[r];
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        int64_t g = gid[i];
        sums[2 * g] += vals[2 * i];
        sums[2 * g + 1] += vals[2 * i + 1];
        if (first[i] < lo[g])
            lo[g] = first[i];
        if (last[i] > hi[g])
            hi[g] = last[i];
    }
    result = PyLong_FromSsize_t(groups);
done:
    PyMem_Free(gid);
    PyBuffer_Release(&kv);
    PyBuffer_Release(&vv);
    PyBuffer_Release(&fv);
    PyBuffer_Release(&lv);
    PyBuffer_Release(&hv);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&lov);
    PyBuffer_Release(&hiv);
    return result;
}

/* burst_starts(gid, t, syn, gap, latest, start): rows in capture order, gid their group;
 * latest (float64 [groups], NaN: none yet) the latest time of each group so far, updated.
 * start[i] (uint8) = latest is NaN, or t[i] - latest > gap, or syn[i] (uint8): as
 * `consumers.BurstConsumer._add` (its reference). */
static PyObject *burst_starts(PyObject *self, PyObject *args) {
    Py_buffer gv, tv, sv, lv, ov;
    double gap;
    if (!PyArg_ParseTuple(args, "y*y*y*dw*w*", &gv, &tv, &sv, &gap, &lv, &ov))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t m = gv.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t groups = lv.len / (Py_ssize_t)sizeof(double);
    if (tv.len != m * (Py_ssize_t)sizeof(double) || sv.len != m || ov.len < m) {
        PyErr_SetString(PyExc_ValueError, "burst_starts: arrays of the wrong size");
        goto done;
    }
    const int64_t *gid = gv.buf;
    const double *t = tv.buf;
    const unsigned char *syn = sv.buf;
    double *latest = lv.buf;
    unsigned char *start = ov.buf;
    for (Py_ssize_t i = 0; i < m; i++) {
        int64_t g = gid[i];
        if (g < 0 || g >= groups) {
            PyErr_SetString(PyExc_ValueError, "burst_starts: a group out of range");
            goto done;
        }
        double prev = latest[g];
        start[i] = prev != prev || t[i] - prev > gap || syn[i];
        if (prev != prev || t[i] > prev)
            latest[g] = t[i];
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&gv);
    PyBuffer_Release(&tv);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&lv);
    PyBuffer_Release(&ov);
    return result;
}

/* Non-overlapping occurrences of needle n[0:ln] in h[from:lh], leftmost first (bytes.count). */
static int64_t count_from(const unsigned char *h, int64_t lh, int64_t from,
                          const unsigned char *n, int64_t ln) {
    int64_t c = 0;
    while (from + ln <= lh) {
        const unsigned char *at = memmem(h + from, (size_t)(lh - from), n, (size_t)ln);
        if (at == NULL)
            break;
        c++;
        from = (at - h) + ln;
    }
    return c;
}

/* canary_scan(buf, starts, ends, gid, forms, form_ends, tails, tail_ends, keep, hits, labels,
 *             out_tails, out_tail_len) -> None
 * The canary search of evidence.canary_in_pcap (its reference) over rows in capture order:
 * row i's payload buf[starts[i]:ends[i]] (non-empty) belongs to flow direction gid[i];
 * forms: the encodings joined (form j ends at form_ends[j]); tails: each flow's last bytes
 * before these rows, joined (flow g's end at tail_ends[g]). Per row: hits[i] the matches
 * in the payload (bytes.count of each form) plus those that start in the flow's tail and
 * end in the payload's first len(form) - 1 bytes, labels[i] the bit set of the forms found.
 * out_tails (keep bytes per flow) and out_tail_len get each flow's last keep bytes after
 * the rows. The payloads are searched joined, one memmem per form over all of them. */
static PyObject *canary_scan(PyObject *self, PyObject *args) {
    Py_buffer bv, sv, ev, gv, fv, fev, tv, tev, hv, lv, otv, olv;
    Py_ssize_t keep;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*nw*w*w*w*", &bv, &sv, &ev, &gv, &fv, &fev,
                          &tv, &tev, &keep, &hv, &lv, &otv, &olv))
        return NULL;
    PyObject *result = NULL;
    unsigned char *stream = NULL, *tmp = NULL;
    int64_t *bounds = NULL;
    Py_ssize_t w = (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t m = sv.len / w, nf = fev.len / w, g = tev.len / w;
    if (ev.len != sv.len || gv.len != sv.len || hv.len < m * w || lv.len < m * w
        || keep < 0 || otv.len < g * keep || olv.len < g * w || nf > 62) {
        PyErr_SetString(PyExc_ValueError, "canary_scan: arrays of the wrong size");
        goto done;
    }
    const unsigned char *buf = bv.buf, *forms = fv.buf, *tails = tv.buf;
    const int64_t *st = sv.buf, *en = ev.buf, *gid = gv.buf, *fe = fev.buf, *te = tev.buf;
    int64_t *hits = hv.buf, *labels = lv.buf, *olen = olv.buf;
    unsigned char *otails = otv.buf;
    int64_t blen = bv.len, total = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (st[i] < 0 || en[i] < st[i] || en[i] > blen || gid[i] < 0 || gid[i] >= g) {
            PyErr_SetString(PyExc_ValueError, "canary_scan: a row out of range");
            goto done;
        }
        total += en[i] - st[i];
    }
    for (Py_ssize_t j = 0; j < g; j++) {
        int64_t a = j ? te[j - 1] : 0;
        if (te[j] < a || te[j] > tv.len || te[j] - a > keep) {
            PyErr_SetString(PyExc_ValueError, "canary_scan: a tail out of range");
            goto done;
        }
        memcpy(otails + j * keep, tails + a, (size_t)(te[j] - a));
        olen[j] = te[j] - a;
    }
    stream = PyMem_Malloc((size_t)total + 1);
    bounds = PyMem_Malloc(((size_t)m + 1) * sizeof(int64_t));
    tmp = PyMem_Malloc(2 * (size_t)keep + 2);
    if (stream == NULL || bounds == NULL || tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t at = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        bounds[i] = at;
        memcpy(stream + at, buf + st[i], (size_t)(en[i] - st[i]));
        at += en[i] - st[i];
        hits[i] = 0;
        labels[i] = 0;
    }
    bounds[m] = at;
    /* matches inside one payload: one search over the joined payloads per form */
    for (Py_ssize_t f = 0; f < nf; f++) {
        int64_t fa = f ? fe[f - 1] : 0, L = fe[f] - fa;
        if (L <= 0)
            continue;
        int64_t from = 0;
        Py_ssize_t row = 0;
        while (from + L <= total) {
            const unsigned char *hit = memmem(stream + from, (size_t)(total - from),
                                              forms + fa, (size_t)L);
            if (hit == NULL)
                break;
            int64_t p = hit - stream;
            while (bounds[row + 1] <= p)
                row++;
            if (p + L <= bounds[row + 1]) {
                hits[row]++;
                labels[row] |= (int64_t)1 << f;
                from = p + L;
            } else {
                from = p + 1;
            }
        }
    }
    /* matches from the flow's tail into the payload, and the tails */
    for (Py_ssize_t i = 0; i < m; i++) {
        const unsigned char *pay = stream + bounds[i];
        int64_t plen = bounds[i + 1] - bounds[i];
        unsigned char *tail = otails + gid[i] * keep;
        int64_t tlen = olen[gid[i]];
        if (tlen > 0) {
            for (Py_ssize_t f = 0; f < nf; f++) {
                int64_t fa = f ? fe[f - 1] : 0, L = fe[f] - fa;
                if (L <= 0)
                    continue;
                int64_t s0 = tlen - L + 1 > 0 ? tlen - L + 1 : 0;
                if (s0 >= tlen || memchr(tail + s0, forms[fa], (size_t)(tlen - s0)) == NULL)
                    continue; /* no match can start in the tail */
                int64_t take = plen < L - 1 ? plen : L - 1;
                memcpy(tmp, tail, (size_t)tlen);
                memcpy(tmp + tlen, pay, (size_t)take);
                int64_t c = count_from(tmp, tlen + take, s0, forms + fa, L);
                if (c) {
                    hits[i] += c;
                    labels[i] |= (int64_t)1 << f;
                }
            }
        }
        if (keep) {
            if (plen >= keep) {
                memcpy(tail, pay + plen - keep, (size_t)keep);
                olen[gid[i]] = keep;
            } else {
                int64_t old = tlen + plen > keep ? keep - plen : tlen;
                memmove(tail, tail + tlen - old, (size_t)old);
                memcpy(tail + old, pay, (size_t)plen);
                olen[gid[i]] = old + plen;
            }
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(stream);
    PyMem_Free(bounds);
    PyMem_Free(tmp);
    Py_buffer *all[] = {&bv, &sv, &ev, &gv, &fv, &fev, &tv, &tev, &hv, &lv, &otv, &olv};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        PyBuffer_Release(all[k]);
    return result;
}

/* endpoint_rows(aw, src, dst, proto, sport, dport, ts, length, gs, gd, infra_src, infra_dst,
 *               fused, keys, vals, first, last) -> (groups, attributed, infrastructure,
 *               unattributed)
 * endpoints._Columns.add (its reference) for one batch of one IP version, reduced at once:
 * aw address words per row (1: IPv4, 2: IPv6), src/dst uint64 [n][aw]; proto, sport, dport,
 * length, gs, gd (variant numbers, -1: no guest) int64 [n]; ts float64 [n]; infra_src,
 * infra_dst uint8 [n]. A packet from a guest gives a row keyed (variant, 0, proto, dport,
 * dst), one to a guest (variant, 1, proto, sport, src); meta = variant, direction, proto,
 * port packed as in `_Columns.add`, the key [meta << 32 | address] (IPv4, fused), [meta,
 * address] (IPv4) or [meta, high, low] (IPv6). Rows of one key are summed ([packets,
 * bytes]) with their least first and greatest last time into keys (uint64 [2n][kw]),
 * vals (int64 [2n][2]), first and last (float64 [2n]), in order of first appearance. */
static PyObject *endpoint_rows(PyObject *self, PyObject *args) {
    Py_buffer in[11], out[4];
    Py_ssize_t aw;
    int fused;
    if (!PyArg_ParseTuple(args, "ny*y*y*y*y*y*y*y*y*y*y*pw*w*w*w*", &aw, &in[0], &in[1],
                          &in[2], &in[3], &in[4], &in[5], &in[6], &in[7], &in[8], &in[9],
                          &in[10], &fused, &out[0], &out[1], &out[2], &out[3]))
        return NULL;
    PyObject *result = NULL;
    uint64_t *rk = NULL;
    int64_t *rv = NULL, *gid = NULL, *heads = NULL;
    double *rt = NULL;
    Py_ssize_t w = 8, n = in[2].len / w;
    Py_ssize_t kw = aw == 2 ? 3 : (fused ? 1 : 2);
    int bad = (aw != 1 && aw != 2) || in[0].len != n * aw * w || in[1].len != n * aw * w
              || in[9].len != n || in[10].len != n || out[0].len < 2 * n * kw * w
              || out[1].len < 4 * n * w || out[2].len < 2 * n * w || out[3].len < 2 * n * w;
    for (int k = 2; k < 9; k++)
        bad = bad || in[k].len != n * w;
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "endpoint_rows: arrays of the wrong size");
        goto done;
    }
    const uint64_t *src = in[0].buf, *dst = in[1].buf;
    const int64_t *proto = in[2].buf, *sport = in[3].buf, *dport = in[4].buf;
    const double *ts = in[5].buf;
    const int64_t *length = in[6].buf, *gs = in[7].buf, *gd = in[8].buf;
    const unsigned char *isrc = in[9].buf, *idst = in[10].buf;
    rk = PyMem_Malloc((2 * (size_t)n + 1) * kw * sizeof(uint64_t));
    rv = PyMem_Malloc((2 * (size_t)n + 1) * sizeof(int64_t));
    rt = PyMem_Malloc((2 * (size_t)n + 1) * sizeof(double));
    gid = PyMem_Malloc((2 * (size_t)n + 1) * sizeof(int64_t));
    heads = PyMem_Malloc((2 * (size_t)n + 1) * sizeof(int64_t));
    if (rk == NULL || rv == NULL || rt == NULL || gid == NULL || heads == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t attributed = 0, infra = 0, unattributed = 0;
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int o = gs[i] >= 0, b = gd[i] >= 0;
        if (!o && !b) {
            unattributed++;
            continue;
        }
        if ((o && idst[i]) || (b && isrc[i]))
            infra++;
        else
            attributed++;
        for (int dir = 0; dir < 2; dir++) {
            if (dir == 0 ? !o : !b)
                continue;
            int64_t variant = dir == 0 ? gs[i] : gd[i];
            int64_t port = dir == 0 ? dport[i] : sport[i];
            const uint64_t *remote = dir == 0 ? dst + i * aw : src + i * aw;
            uint64_t meta = (uint64_t)((((variant << 1 | dir) << 8 | proto[i]) << 16) | port);
            uint64_t *key = rk + m * kw;
            if (aw == 2) {
                key[0] = meta;
                key[1] = remote[0];
                key[2] = remote[1];
            } else if (fused) {
                key[0] = meta << 32 | remote[0];
            } else {
                key[0] = meta;
                key[1] = remote[0];
            }
            rv[m] = length[i];
            rt[m] = ts[i];
            m++;
        }
    }
    Py_ssize_t groups = group_rows(rk, m, kw, gid, heads);
    if (groups < 0) {
        PyErr_NoMemory();
        goto done;
    }
    uint64_t *keys = out[0].buf;
    int64_t *vals = out[1].buf;
    double *first = out[2].buf, *last = out[3].buf;
    for (Py_ssize_t g = 0; g < groups; g++) {
        memcpy(keys + g * kw, rk + heads[g] * kw, (size_t)kw * sizeof(uint64_t));
        vals[2 * g] = 0;
        vals[2 * g + 1] = 0;
        first[g] = last[g] = rt[heads[g]];
    }
    for (Py_ssize_t r = 0; r < m; r++) {
        int64_t g = gid[r];
        vals[2 * g] += 1;
        vals[2 * g + 1] += rv[r];
        if (rt[r] < first[g])
            first[g] = rt[r];
        if (rt[r] > last[g])
            last[g] = rt[r];
    }
    result = Py_BuildValue("nLLL", groups, (long long)attributed, (long long)infra,
                           (long long)unattributed);
done:
    PyMem_Free(rk);
    PyMem_Free(rv);
    PyMem_Free(rt);
    PyMem_Free(gid);
    PyMem_Free(heads);
    for (int k = 0; k < 11; k++)
        PyBuffer_Release(&in[k]);
    for (int k = 0; k < 4; k++)
        PyBuffer_Release(&out[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"endpoint_rows", endpoint_rows, METH_VARARGS,
     "endpoint_rows(aw, src, dst, proto, sport, dport, ts, length, gs, gd, infra_src, "
     "infra_dst, fused, keys, vals, first, last) -> (groups, attributed, infra, unattributed)"},
    {"canary_scan", canary_scan, METH_VARARGS,
     "canary_scan(buf, starts, ends, gid, forms, form_ends, tails, tail_ends, keep, hits, "
     "labels, out_tails, out_tail_len) -> None"},
    {"group_ids", group_ids, METH_VARARGS, "group_ids(keys, k, gid, heads) -> groups"},
    {"group_reduce", group_reduce, METH_VARARGS,
     "group_reduce(keys, k, vals, first, last, heads, sums, lo, hi) -> groups"},
    {"burst_starts", burst_starts, METH_VARARGS,
     "burst_starts(gid, t, syn, gap, latest, start) -> None"},
    {"frame_columns", frame_columns, METH_VARARGS,
     "frame_columns(buf, starts, ends, *link, *tables, i4, a4, i6, s6, d6, slow) -> (n4, n6, nslow)"},
    {"first_seen", first_seen, METH_VARARGS,
     "first_seen(buf, starts, ends, tags) -> bytes of int64 rows whose (tag, slice) is new"},
    {"snis", snis, METH_VARARGS,
     "snis(buf, starts, ends) -> list of each ClientHello message's SNI bytes, or None"},
    {"gather", gather, METH_VARARGS,
     "gather(buf, starts, ends) -> bytes: the slices buf[start:end], concatenated"},
    {"pcap_offsets", pcap_offsets, METH_VARARGS,
     "pcap_offsets(buf, pos, count, big_endian) -> bytes of native int64 record offsets"},
    {"pcapng_offsets", pcapng_offsets, METH_VARARGS,
     "pcapng_offsets(buf, pos, count, big_endian) -> bytes of native int64 EPB offsets"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "Native loops of the fast capture path (see native.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
