/*
 * dedup_audit.engine._native: the lexical engine's hot loops in C.
 *
 * Why C: shingling, hashing and MinHash touch every character and every shingle of the corpus
 * (about 1e9 hash-multiplies per 50k SFT records at 128 permutations). In per-record Python
 * that is the whole cost of a scan; here it is a few nanoseconds per shingle and permutation,
 * and the GIL is released so Python threads can run one call per core.
 *
 * The hashing scheme is specified (and re-implemented in pure Python) in
 * dedup_audit/engine/reference.py; tests check that both give identical outputs. Every value is
 * a function of the text's code points only (never of the str's internal width, the platform's
 * endianness or the thread count), so results are deterministic.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define M_TOKEN 0x100000001b3ULL        /* FNV-1a 64 prime */
#define SEED_TOKEN 0xcbf29ce484222325ULL /* FNV-1a 64 offset basis */
#define M_GRAM 0x9e3779b97f4a7c15ULL    /* golden ratio: n-gram and band folding */
#define SEED_EXACT1 0x243f6a8885a308d3ULL
#define SEED_EXACT2 0x13198a2e03707344ULL
#define M_EXACT2 0xa0761d6478bd642fULL
#define SEED_BAND 0x452821e638d01377ULL

static inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* Python's `\w` for str patterns: Py_UNICODE_ISALNUM or underscore (what re.findall(r"\w+")
 * uses), so word tokens here are exactly the regex's. */
static inline int is_word(Py_UCS4 c) { return c == '_' || Py_UNICODE_ISALNUM(c); }

static inline uint64_t gram(const uint64_t *h, Py_ssize_t n) {
    uint64_t g = h[0];
    for (Py_ssize_t j = 1; j < n; j++) g = fmix64(g * M_GRAM + h[j]);
    return g;
}

/* in-place sort of uint64 (introsort-lite: quicksort with median of three + insertion sort) */
static void sort_u64(uint64_t *a, Py_ssize_t n) {
    while (n > 16) {
        uint64_t x = a[0], y = a[n / 2], z = a[n - 1], t;
        uint64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        Py_ssize_t i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i >= j) break;
            t = a[i]; a[i] = a[j]; a[j] = t;
            i++; j--;
        }
        /* recurse on the smaller half, loop on the larger (bounded stack) */
        if (j + 1 < n - j - 1) {
            sort_u64(a, j + 1);
            a += j + 1; n -= j + 1;
        } else {
            sort_u64(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        Py_ssize_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t len;
} text_ref;

typedef struct {
    uint64_t *buf;
    Py_ssize_t len, cap;
} u64vec;

static int vec_reserve(u64vec *v, Py_ssize_t extra) {
    if (v->len + extra <= v->cap) return 0;
    Py_ssize_t cap = v->cap ? v->cap : 1024;
    while (cap < v->len + extra) cap *= 2;
    uint64_t *nb = (uint64_t *)realloc(v->buf, (size_t)cap * sizeof(uint64_t));
    if (!nb) return -1;
    v->buf = nb;
    v->cap = cap;
    return 0;
}

/* ASCII fast paths: the Unicode predicates are function calls into CPython's database. */
static unsigned char ascii_word[128], ascii_space[128];

static void init_tables(void) {
    for (int c = 0; c < 128; c++) {
        ascii_word[c] = (unsigned char)is_word((Py_UCS4)c);
        ascii_space[c] = (unsigned char)(Py_UNICODE_ISSPACE((Py_UCS4)c) ? 1 : 0);
    }
}

static inline int word_char(Py_UCS4 c) { return c < 128 ? ascii_word[c] : is_word(c); }
static inline int space_char(Py_UCS4 c) {
    return c < 128 ? ascii_space[c] : Py_UNICODE_ISSPACE(c);
}

/* The unit pass over one text, specialised per str storage width (1, 2 or 4 bytes). */
#define UNIT_PASS(TYPE)                                                                    \
    do {                                                                                   \
        const TYPE *d = (const TYPE *)t->data;                                             \
        if (char_mode) {                                                                   \
            for (Py_ssize_t i = 0; i < t->len; i++) {                                      \
                Py_UCS4 c = d[i];                                                          \
                e1 = (e1 ^ c) * M_TOKEN;                                                   \
                e2 = (e2 ^ c) * M_EXACT2;                                                  \
                if (!space_char(c)) u[nu++] = fmix64((uint64_t)c + M_GRAM);                \
            }                                                                              \
        } else {                                                                           \
            uint64_t h = 0;                                                                \
            int in_word = 0;                                                               \
            for (Py_ssize_t i = 0; i < t->len; i++) {                                      \
                Py_UCS4 c = d[i];                                                          \
                e1 = (e1 ^ c) * M_TOKEN;                                                   \
                e2 = (e2 ^ c) * M_EXACT2;                                                  \
                if (word_char(c)) {                                                        \
                    if (!in_word) { h = SEED_TOKEN; in_word = 1; }                         \
                    h = (h ^ c) * M_TOKEN;                                                 \
                } else if (in_word) {                                                      \
                    u[nu++] = fmix64(h);                                                   \
                    in_word = 0;                                                           \
                }                                                                          \
            }                                                                              \
            if (in_word) u[nu++] = fmix64(h);                                              \
        }                                                                                  \
    } while (0)

/* One text -> its sorted distinct shingle hashes appended to `out`; returns how many (or -1 on
 * out of memory). `tmp` is scratch for per-unit hashes. */
static Py_ssize_t shingle_text(const text_ref *t, int char_mode, int n, u64vec *tmp, u64vec *out,
                               uint64_t exact[2]) {
    uint64_t e1 = SEED_EXACT1, e2 = SEED_EXACT2;
    if (vec_reserve(tmp, t->len + 1) < 0) return -1;
    uint64_t *u = tmp->buf;
    Py_ssize_t nu = 0;
    if (t->kind == PyUnicode_1BYTE_KIND) UNIT_PASS(Py_UCS1);
    else if (t->kind == PyUnicode_2BYTE_KIND) UNIT_PASS(Py_UCS2);
    else UNIT_PASS(Py_UCS4);
    exact[0] = fmix64(e1 ^ (uint64_t)t->len);
    exact[1] = fmix64(e2 + (uint64_t)t->len);
    if (nu == 0) return 0;
    Py_ssize_t grams = nu <= n ? 1 : nu - n + 1;
    if (vec_reserve(out, grams) < 0) return -1;
    uint64_t *dst = out->buf + out->len;
    if (nu <= n) {
        dst[0] = gram(u, nu);
    } else if (n == 3) {
        for (Py_ssize_t i = 0; i < grams; i++)
            dst[i] = fmix64(fmix64(u[i] * M_GRAM + u[i + 1]) * M_GRAM + u[i + 2]);
    } else {
        for (Py_ssize_t i = 0; i < grams; i++) dst[i] = gram(u + i, n);
    }
    sort_u64(dst, grams);
    Py_ssize_t k = 1;
    for (Py_ssize_t i = 1; i < grams; i++)
        if (dst[i] != dst[k - 1]) dst[k++] = dst[i];
    out->len += k;
    return k;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define MULTIVERSION
#endif

/* The MinHash inner loop: one multiply-add-shift per shingle and permutation. Compiled once per
 * instruction set (runtime dispatch), so AVX-512 machines multiply 8 slots at a time while the
 * same binary still runs on any x86-64. */
MULTIVERSION
static void minhash_row(const uint64_t *restrict sh, Py_ssize_t k, const uint64_t *restrict A,
                        const uint64_t *restrict B, uint32_t *restrict row, Py_ssize_t perms) {
    for (Py_ssize_t p = 0; p < perms; p++) row[p] = 0xffffffffu;
    for (Py_ssize_t s = 0; s < k; s++) {
        const uint64_t x = sh[s];
        for (Py_ssize_t p = 0; p < perms; p++) {
            uint32_t v = (uint32_t)((A[p] * x + B[p]) >> 32);
            row[p] = v < row[p] ? v : row[p];
        }
    }
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t min_bytes,
                      const char *name) {
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS
                                               : PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len < min_bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer holds %zd bytes, needs %zd", name, view->len,
                     min_bytes);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(sketch_doc,
"sketch(texts, char_mode, ngram, a, b, rows, bands, sig_out, keys_out, exact_out, counts_out)\n"
"-> bytes\n\n"
"Shingle, hash and MinHash a list of normalised texts (see engine/reference.py for the\n"
"scheme). Fills sig_out (uint32 n x P), keys_out (uint64 n x bands), exact_out (uint64 n x 2)\n"
"and counts_out (int64 n: distinct shingles per text); returns the sorted distinct shingle\n"
"hashes of every text, concatenated, as bytes of native uint64.");

static PyObject *sketch(PyObject *self, PyObject *args) {
    PyObject *texts, *a_obj, *b_obj, *sig_obj, *keys_obj, *exact_obj, *counts_obj;
    int char_mode, ngram, rows, bands;
    if (!PyArg_ParseTuple(args, "O!iiOOiiOOOO", &PyList_Type, &texts, &char_mode, &ngram, &a_obj,
                          &b_obj, &rows, &bands, &sig_obj, &keys_obj, &exact_obj, &counts_obj))
        return NULL;
    if (ngram < 1 || rows < 1 || bands < 0) {
        PyErr_SetString(PyExc_ValueError, "ngram and rows must be >= 1, bands >= 0");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    Py_buffer a, b, sig, keys, exact, counts;
    if (get_buffer(a_obj, &a, 0, 0, "a") < 0) return NULL;
    Py_ssize_t perms = a.len / (Py_ssize_t)sizeof(uint64_t);
    if (rows * bands > perms) {
        PyBuffer_Release(&a);
        PyErr_SetString(PyExc_ValueError, "rows * bands exceeds the number of permutations");
        return NULL;
    }
    if (get_buffer(b_obj, &b, 0, perms * 8, "b") < 0) { PyBuffer_Release(&a); return NULL; }
    if (get_buffer(sig_obj, &sig, 1, n * perms * 4, "sig_out") < 0) goto fail2;
    if (get_buffer(keys_obj, &keys, 1, n * bands * 8, "keys_out") < 0) goto fail3;
    if (get_buffer(exact_obj, &exact, 1, n * 16, "exact_out") < 0) goto fail4;
    if (get_buffer(counts_obj, &counts, 1, n * 8, "counts_out") < 0) goto fail5;

    text_ref *refs = (text_ref *)malloc((size_t)(n ? n : 1) * sizeof(text_ref));
    if (!refs) { PyErr_NoMemory(); goto fail6; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyList_GET_ITEM(texts, i);
        if (!PyUnicode_Check(s)) {
            free(refs);
            PyErr_Format(PyExc_TypeError, "texts[%zd] is not a str", i);
            goto fail6;
        }
        refs[i].kind = PyUnicode_KIND(s);
        refs[i].data = PyUnicode_DATA(s);
        refs[i].len = PyUnicode_GET_LENGTH(s);
    }
    const uint64_t *A = (const uint64_t *)a.buf, *B = (const uint64_t *)b.buf;
    uint32_t *S = (uint32_t *)sig.buf;
    uint64_t *K = (uint64_t *)keys.buf, *E = (uint64_t *)exact.buf;
    int64_t *C = (int64_t *)counts.buf;
    u64vec tmp = {0}, out = {0};
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !oom; i++) {
        Py_ssize_t start = out.len;
        Py_ssize_t k = shingle_text(&refs[i], char_mode, ngram, &tmp, &out, E + 2 * i);
        if (k < 0) { oom = 1; break; }
        C[i] = k;
        uint32_t *row = S + i * perms;
        minhash_row(out.buf + start, k, A, B, row, perms);
        for (int band = 0; band < bands; band++) {
            uint64_t h = fmix64(SEED_BAND + (uint64_t)band);
            for (int r = 0; r < rows; r++) h = fmix64(h * M_GRAM + row[band * rows + r]);
            K[i * bands + band] = h;
        }
    }
    Py_END_ALLOW_THREADS
    free(refs);
    free(tmp.buf);
    PyObject *result = NULL;
    if (oom) {
        PyErr_NoMemory();
    } else {
        result = PyBytes_FromStringAndSize((const char *)out.buf, out.len * 8);
    }
    free(out.buf);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&exact);
    PyBuffer_Release(&keys);
    PyBuffer_Release(&sig);
    PyBuffer_Release(&b);
    PyBuffer_Release(&a);
    return result;
fail6:
    PyBuffer_Release(&counts);
fail5:
    PyBuffer_Release(&exact);
fail4:
    PyBuffer_Release(&keys);
fail3:
    PyBuffer_Release(&sig);
fail2:
    PyBuffer_Release(&b);
    PyBuffer_Release(&a);
    return NULL;
}

PyDoc_STRVAR(intersect_doc,
"intersect(shingles_x, offsets_x, shingles_y, offsets_y, lo, hi, inter_out) -> None\n\n"
"|A & B| for every candidate (lo[i], hi[i]): A is text lo[i] of store x, B text hi[i] of store\n"
"y (a store holds each text's sorted distinct shingle hashes: text t owns\n"
"shingles[offsets[t]:offsets[t+1]]). Pass one store twice for pairs inside it. Releases the GIL.");

static PyObject *intersect(PyObject *self, PyObject *args) {
    PyObject *sx_obj, *ox_obj, *sy_obj, *oy_obj, *lo_obj, *hi_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &sx_obj, &ox_obj, &sy_obj, &oy_obj, &lo_obj, &hi_obj,
                          &out_obj))
        return NULL;
    Py_buffer sx, ox, sy, oy, lo, hi, out;
    if (get_buffer(sx_obj, &sx, 0, 0, "shingles_x") < 0) return NULL;
    if (get_buffer(ox_obj, &ox, 0, 8, "offsets_x") < 0) goto f1;
    if (get_buffer(sy_obj, &sy, 0, 0, "shingles_y") < 0) goto f2;
    if (get_buffer(oy_obj, &oy, 0, 8, "offsets_y") < 0) goto f3;
    if (get_buffer(lo_obj, &lo, 0, 0, "lo") < 0) goto f4;
    Py_ssize_t m = lo.len / 8;
    if (get_buffer(hi_obj, &hi, 0, m * 8, "hi") < 0) goto f5;
    if (get_buffer(out_obj, &out, 1, m * 8, "inter_out") < 0) goto f6;
    const uint64_t *SX = (const uint64_t *)sx.buf, *SY = (const uint64_t *)sy.buf;
    const int64_t *OX = (const int64_t *)ox.buf, *OY = (const int64_t *)oy.buf;
    const int64_t *L = (const int64_t *)lo.buf, *H = (const int64_t *)hi.buf;
    int64_t *R = (int64_t *)out.buf;
    Py_ssize_t nx = ox.len / 8 - 1, ny = oy.len / 8 - 1, shx = sx.len / 8, shy = sy.len / 8;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m; i++) {
        int64_t x = L[i], y = H[i];
        if (x < 0 || y < 0 || x >= nx || y >= ny || OX[x] > OX[x + 1] || OX[x + 1] > shx ||
            OY[y] > OY[y + 1] || OY[y + 1] > shy) {
            bad = 1;
            break;
        }
        const uint64_t *p = SX + OX[x], *pe = SX + OX[x + 1], *q = SY + OY[y], *qe = SY + OY[y + 1];
        int64_t c = 0;
        while (p < pe && q < qe) {
            if (*p < *q) p++;
            else if (*q < *p) q++;
            else { c++; p++; q++; }
        }
        R[i] = c;
    }
    Py_END_ALLOW_THREADS
    if (bad) PyErr_SetString(PyExc_IndexError, "candidate index out of range of the shingles");
    PyBuffer_Release(&out);
f6:
    PyBuffer_Release(&hi);
f5:
    PyBuffer_Release(&lo);
f4:
    PyBuffer_Release(&oy);
f3:
    PyBuffer_Release(&sy);
f2:
    PyBuffer_Release(&ox);
f1:
    PyBuffer_Release(&sx);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* ---- normalisation: punctuation removal and whitespace folding ---------------------------- */

/* What views.normalize does after NFKC and lowercasing, for one text: drop every character
 * flagged in `punct` (a 0x10000-byte table of the BMP: ASCII punctuation and Unicode category
 * P*), then fold runs of whitespace (Py_UNICODE_ISSPACE, exactly str.split()'s rule) into one
 * space with none at either end. ASCII letters are lowercased here when `lower` is set (for an
 * ASCII str that is all str.lower() does). Returns NULL with no error set when the text has a
 * character above the BMP while `punct` is given: the caller then takes the Python path. */
static PyObject *normalize_one(PyObject *text, int lower, const unsigned char *punct, int fold) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 maxc = 0;
    if (punct && kind == PyUnicode_4BYTE_KIND) {
        for (Py_ssize_t i = 0; i < n; i++)
            if (PyUnicode_READ(kind, data, i) > 0xFFFF) return NULL;
    }
    Py_UCS4 *buf = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(Py_UCS4));
    if (!buf) return PyErr_NoMemory();
    Py_ssize_t m = 0;
    int pending_space = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (lower && c >= 'A' && c <= 'Z') c += 32;
        if (punct && punct[c]) continue;
        if (fold && space_char(c)) {
            pending_space = m > 0;
            continue;
        }
        if (pending_space) {
            buf[m++] = ' ';
            pending_space = 0;
        }
        buf[m++] = c;
        if (c > maxc) maxc = c;
    }
    PyObject *out = PyUnicode_New(m, maxc < 127 ? 127 : maxc);
    if (out) {
        int okind = PyUnicode_KIND(out);
        void *odata = PyUnicode_DATA(out);
        for (Py_ssize_t i = 0; i < m; i++) PyUnicode_WRITE(okind, odata, i, buf[i]);
    }
    PyMem_Free(buf);
    return out;
}

static const char normalize_doc[] =
    "normalize(texts, lower_ascii, punct_table_or_None, fold_whitespace) -> list[str | None]\n\n"
    "The tail of views.normalize for texts already NFKC-normalised and lowercased (ASCII texts\n"
    "need neither: lower_ascii lowercases them here). None marks a text the caller must\n"
    "normalise in Python (a character above the BMP with punctuation removal on).";

static PyObject *normalize(PyObject *self, PyObject *args) {
    PyObject *texts, *table;
    int lower, fold;
    if (!PyArg_ParseTuple(args, "O!pOp", &PyList_Type, &texts, &lower, &table, &fold)) return NULL;
    Py_buffer tb = {0};
    const unsigned char *punct = NULL;
    if (table != Py_None) {
        if (PyObject_GetBuffer(table, &tb, PyBUF_SIMPLE) < 0) return NULL;
        if (tb.len != 0x10000) {
            PyBuffer_Release(&tb);
            PyErr_SetString(PyExc_ValueError, "the punctuation table must have 65536 bytes");
            return NULL;
        }
        punct = (const unsigned char *)tb.buf;
    }
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *t = PyList_GET_ITEM(texts, i);
        if (!PyUnicode_Check(t)) {
            PyErr_SetString(PyExc_TypeError, "normalize() takes a list of str");
            Py_CLEAR(out);
            break;
        }
        PyObject *r = normalize_one(t, lower, punct, fold);
        if (!r) {
            if (PyErr_Occurred()) {
                Py_CLEAR(out);
                break;
            }
            r = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(out, i, r);
    }
    if (punct) PyBuffer_Release(&tb);
    return out;
}

static PyMethodDef methods[] = {
    {"sketch", sketch, METH_VARARGS, sketch_doc},
    {"intersect", intersect, METH_VARARGS, intersect_doc},
    {"normalize", normalize, METH_VARARGS, normalize_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Native kernels of the lexical engine (see dedup_audit/engine/reference.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    init_tables();
    return PyModule_Create(&module);
}
