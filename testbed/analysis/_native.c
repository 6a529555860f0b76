/* The fast capture path's native loops: the record-header walk, the payload gather,
 * the ClientHello SNI walk and the first-seen filter of DNS responses, and the module's
 * table (the frame decoder is in _native_frames.c, the consumers' loops in
 * _native_groups.c; native.py holds their Python references and the speed requirement).
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
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_native.h"

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

/* pcap_records(buf, pos, count, big, limit, off, sec, frac, incl, orig) -> k: the walk of
 * pcap_offsets and pcapvec.PcapBatcher's checks in one loop (its reference): the records
 * from pos, at most count, up to the first whose header or data is past the buffer or whose
 * captured length is over limit; their offsets and header fields go to the int64 arrays
 * (writable, count long). */
static PyObject *pcap_records(PyObject *self, PyObject *args) {
    Py_buffer view, o[5];
    Py_ssize_t pos, count;
    int big;
    long long limit;
    if (!PyArg_ParseTuple(args, "y*nnpLw*w*w*w*w*", &view, &pos, &count, &big, &limit, &o[0],
                          &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    PyObject *result = NULL;
    int bad = pos < 0 || count < 0;
    for (int k = 0; k < 5; k++)
        bad = bad || o[k].len < count * (Py_ssize_t)sizeof(int64_t);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "pcap_records: bad position, count or arrays");
        goto done;
    }
    const unsigned char *buf = view.buf;
    int64_t len = view.len, p = pos;
    int64_t *off = o[0].buf, *sec = o[1].buf, *frac = o[2].buf, *incl = o[3].buf,
            *orig = o[4].buf;
    Py_ssize_t n = 0;
    while (n < count && p + 16 <= len) {
        int64_t c = u32(buf + p + 8, big);
        if (c > limit || p + 16 + c > len)
            break;
        off[n] = p;
        sec[n] = u32(buf + p, big);
        frac[n] = u32(buf + p + 4, big);
        incl[n] = c;
        orig[n] = u32(buf + p + 12, big);
        n++;
        p += 16 + c;
    }
    result = PyLong_FromSsize_t(n);
done:
    PyBuffer_Release(&view);
    for (int k = 0; k < 5; k++)
        PyBuffer_Release(&o[k]);
    return result;
}

static PyObject *pcapng_offsets(PyObject *self, PyObject *args) { return walk(args, 1); }

/* The (buf, starts, ends) calls (gather, snis): starts and ends are native int64 buffers of
 * one length; ``body`` gets them with the buffer and its length, and the buffers are released
 * whatever it returns. */
typedef PyObject *(*ranges_body)(const unsigned char *buf, int64_t len, const int64_t *st,
                                 const int64_t *en, Py_ssize_t n);

static PyObject *with_ranges(PyObject *args, ranges_body body) {
    Py_buffer view, sv, ev;
    if (!PyArg_ParseTuple(args, "y*y*y*", &view, &sv, &ev))
        return NULL;
    PyObject *result = NULL;
    if (ev.len != sv.len || sv.len % (Py_ssize_t)sizeof(int64_t))
        PyErr_SetString(PyExc_ValueError, "starts and ends must be int64 arrays of one length");
    else
        result = body(view.buf, view.len, sv.buf, ev.buf, sv.len / (Py_ssize_t)sizeof(int64_t));
    PyBuffer_Release(&view);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&ev);
    return result;
}

/* An offset clipped to [0, len], as Python slicing clips. */
static inline int64_t clip(int64_t x, int64_t len) { return x < 0 ? 0 : (x > len ? len : x); }

/* gather(buf, starts, ends) -> bytes: buf[starts[0]:ends[0]] + buf[starts[1]:ends[1]] + ...
 * (starts, ends: native int64 buffers of offsets >= 0; an empty or inverted range adds
 * nothing, and a range is clipped to the buffer, as Python slicing does). */
static PyObject *gather_body(const unsigned char *buf, int64_t len, const int64_t *st,
                             const int64_t *en, Py_ssize_t n) {
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = clip(st[i], len), b = clip(en[i], len);
        if (b > a)
            total += b - a;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (result == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = clip(st[i], len), b = clip(en[i], len);
        if (b > a) {
            memcpy(out, buf + a, (size_t)(b - a));
            out += b - a;
        }
    }
    return result;
}

static PyObject *gather(PyObject *self, PyObject *args) {
    return with_ranges(args, gather_body);
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
static PyObject *snis_body(const unsigned char *buf, int64_t len, const int64_t *st,
                           const int64_t *en, Py_ssize_t n) {
    PyObject *result = PyList_New(n);
    if (result == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t a = clip(st[i], len), b = clip(en[i], len);
        int64_t at = 0, size = 0;
        PyObject *item;
        if (b > a && hello_sni(buf + a, b - a, &at, &size)) {
            item = PyBytes_FromStringAndSize((const char *)buf + a + at, (Py_ssize_t)size);
            if (item == NULL) {
                Py_DECREF(result);
                return NULL;
            }
        } else {
            item = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(result, i, item);
    }
    return result;
}

static PyObject *snis(PyObject *self, PyObject *args) {
    return with_ranges(args, snis_body);
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


static PyMethodDef methods[] = {
    {"pcap_records", pcap_records, METH_VARARGS,
     "pcap_records(buf, pos, count, big, limit, off, sec, frac, incl, orig) -> k"},
    {"addr_find", addr_find, METH_VARARGS, "addr_find(aw, addr, keys, vals, out) -> None"},
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
