/* The native loops of the scan's consumers (see native.py for the speed requirement, and
 * each function's Python reference): rows grouped by key through a hash table (endpoint
 * reduction, burst groups), the burst test, the canary search, a batch's endpoint rows.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_native.h"

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
PyObject *group_ids(PyObject *self, PyObject *args) {
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
PyObject *group_reduce(PyObject *self, PyObject *args) {
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
PyObject *burst_starts(PyObject *self, PyObject *args) {
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
PyObject *canary_scan(PyObject *self, PyObject *args) {
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
PyObject *endpoint_rows(PyObject *self, PyObject *args) {
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

/* addr_find(aw, addr, keys, vals, out) -> None: for each address (uint64 [n][aw], big-endian
 * words) the value of the equal key in keys (uint64 [t][aw], sorted ascending as tuples of
 * words), else -1, into out (int64 [n]): addrindex.AddrIndex.find (its reference). */
PyObject *addr_find(PyObject *self, PyObject *args) {
    Py_buffer av, kv, vv, ov;
    Py_ssize_t aw;
    if (!PyArg_ParseTuple(args, "ny*y*y*w*", &aw, &av, &kv, &vv, &ov))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t w = 8, n = aw > 0 ? av.len / (aw * w) : 0, t = vv.len / w;
    if ((aw != 1 && aw != 2) || av.len != n * aw * w || kv.len != t * aw * w
        || ov.len < n * w) {
        PyErr_SetString(PyExc_ValueError, "addr_find: arrays of the wrong size");
        goto done;
    }
    const uint64_t *addr = av.buf, *keys = kv.buf;
    const int64_t *vals = vv.buf;
    int64_t *out = ov.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint64_t *a = addr + i * aw;
        Py_ssize_t lo = 0, hi = t;
        out[i] = -1;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            const uint64_t *k = keys + mid * aw;
            int cmp = k[0] < a[0] ? -1 : k[0] > a[0];
            if (cmp == 0 && aw == 2)
                cmp = k[1] < a[1] ? -1 : k[1] > a[1];
            if (cmp == 0) {
                out[i] = vals[mid];
                break;
            }
            if (cmp < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&av);
    PyBuffer_Release(&kv);
    PyBuffer_Release(&vv);
    PyBuffer_Release(&ov);
    return result;
}
