/*
 * Fast path of the OTLP protobuf decoder: ExportTraceServiceRequest bytes -> Arrow column buffers.
 *
 * Why it exists: walking upb message objects from Python costs ~20 us a span and holds the GIL
 * all the while, which starves the writer thread's DuckDB calls (bench/gil_contention.py). This
 * reads the wire format once, without the GIL, straight into the buffers of SPAN_SCHEMA's columns.
 *
 * It is a fast path, not a second decoder: spanlake/ingest/decode.py stays the reference. Anything
 * this file does not reproduce exactly (malformed bytes, invalid UTF-8, spans to reject, duplicate
 * attribute keys, fields set twice that protobuf would merge, enum values out of range, deep
 * nesting, more than 64 events or links on a span, non-ASCII text that Python would case-fold or
 * strip) makes decode() return None, and the caller runs the Python decoder, which raises or
 * rejects with its own messages.
 * tests/test_native_decoder.py checks that both give the same table.
 *
 * Every read is bounds-checked against the input; the input is never written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OK = 0, FALLBACK = 1, NOMEM = 2 };
#define TRY(expr)                  \
    do {                           \
        int rc_ = (expr);          \
        if (rc_ != OK) return rc_; \
    } while (0)
#define EXPECT_WIRE(wt, want) \
    if ((wt) != (want)) return FALLBACK
#define MAX_DEPTH 32
#define MAX_KEYS 512
#define INT64_MAX_U ((uint64_t)INT64_MAX)

/* ------------------------------------------------------------------ growable buffers */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} Buf;

static int buf_grow(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        if (cap > SIZE_MAX / 2) return NOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) return NOMEM;
    b->p = p;
    b->cap = cap;
    return OK;
}

static inline int buf_put(Buf *b, const void *s, size_t n) {
    TRY(buf_grow(b, n));
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    return OK;
}

static inline int buf_ch(Buf *b, uint8_t c) {
    TRY(buf_grow(b, 1));
    b->p[b->len++] = c;
    return OK;
}

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

/* ------------------------------------------------------------------ wire format */

typedef struct {
    const uint8_t *p;
    size_t n;
} Slice;

typedef struct {
    const uint8_t *p, *end;
} Reader;

static inline Reader reader(Slice s) { return (Reader){s.p, s.p + s.n}; }

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return FALLBACK;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) return FALLBACK;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return OK;
        }
    }
    return FALLBACK;
}

static int read_tag(Reader *r, uint32_t *field, uint32_t *wire) {
    uint64_t v;
    TRY(read_varint(r, &v));
    if (v >> 32) return FALLBACK;
    *field = (uint32_t)(v >> 3);
    *wire = (uint32_t)(v & 7);
    return *field == 0 ? FALLBACK : OK;
}

static int read_len(Reader *r, Slice *s) {
    uint64_t n;
    TRY(read_varint(r, &n));
    if (n > (uint64_t)(r->end - r->p)) return FALLBACK;
    s->p = r->p;
    s->n = (size_t)n;
    r->p += n;
    return OK;
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return FALLBACK;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += 8;
    *out = v;
    return OK;
}

static int read_fixed32(Reader *r, uint32_t *out) {
    if (r->end - r->p < 4) return FALLBACK;
    *out = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return OK;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { /* ASCII runs, 8 bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[i + 1] < 0xA0) return 0; /* overlong */
            if (c == 0xED && s[i + 1] >= 0xA0) return 0; /* UTF-16 surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && s[i + 1] < 0x90) return 0; /* overlong */
            if (c == 0xF4 && s[i + 1] >= 0x90) return 0; /* beyond U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* A proto3 `string`: upb refuses invalid UTF-8, so the Python decoder raises: fall back to it. */
static int read_string(Reader *r, Slice *s) {
    TRY(read_len(r, s));
    return utf8_valid(s->p, s->n) ? OK : FALLBACK;
}

static int skip_field(Reader *r, uint32_t wire) {
    uint64_t v;
    Slice s;
    switch (wire) {
        case 0:
            return read_varint(r, &v);
        case 1:
            if (r->end - r->p < 8) return FALLBACK;
            r->p += 8;
            return OK;
        case 2:
            return read_len(r, &s);
        case 5:
            if (r->end - r->p < 4) return FALLBACK;
            r->p += 4;
            return OK;
        default: /* groups: let upb judge them */
            return FALLBACK;
    }
}

static int read_uint32_varint(Reader *r, uint32_t *out) {
    uint64_t v;
    TRY(read_varint(r, &v));
    if (v > UINT32_MAX) return FALLBACK;
    *out = (uint32_t)v;
    return OK;
}

/* ------------------------------------------------------------------ AnyValue and KeyValue */

enum { V_NONE, V_STR, V_BOOL, V_INT, V_DOUBLE, V_ARRAY, V_KVLIST, V_BYTES };

typedef struct {
    int kind;
    Slice s;     /* V_STR, V_BYTES, V_ARRAY, V_KVLIST: the payload */
    uint64_t u;  /* V_BOOL, V_INT */
    double d;    /* V_DOUBLE */
} Value;

static int parse_value(Slice in, Value *v) {
    Reader r = reader(in);
    int messages = 0;
    v->kind = V_NONE;
    while (r.p < r.end) {
        uint32_t field, wire;
        uint64_t bits;
        TRY(read_tag(&r, &field, &wire));
        switch (field) {
            case 1:
                EXPECT_WIRE(wire, 2);
                TRY(read_string(&r, &v->s));
                v->kind = V_STR;
                break;
            case 2:
            case 3:
                EXPECT_WIRE(wire, 0);
                TRY(read_varint(&r, &v->u));
                v->kind = field == 2 ? V_BOOL : V_INT;
                break;
            case 4:
                EXPECT_WIRE(wire, 1);
                TRY(read_fixed64(&r, &bits));
                memcpy(&v->d, &bits, 8);
                v->kind = V_DOUBLE;
                break;
            case 5:
            case 6:
                EXPECT_WIRE(wire, 2);
                if (messages++) return FALLBACK; /* protobuf would merge or reset: not copied here */
                TRY(read_len(&r, &v->s));
                v->kind = field == 5 ? V_ARRAY : V_KVLIST;
                break;
            case 7:
                EXPECT_WIRE(wire, 2);
                TRY(read_len(&r, &v->s));
                v->kind = V_BYTES;
                break;
            case 8: /* string_value_strindex (profiles dictionary): Python stores the index */
                return FALLBACK;
            default:
                TRY(skip_field(&r, wire));
        }
    }
    return OK;
}

typedef struct {
    Slice key;
    Slice value; /* AnyValue bytes; empty = unset */
} KV;

typedef struct {
    KV *items;
    size_t n, cap;
} KVList;

static void kvlist_free(KVList *l) {
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static int kvlist_push(KVList *l, Slice in) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        KV *items = realloc(l->items, cap * sizeof(KV));
        if (items == NULL) return NOMEM;
        l->items = items;
        l->cap = cap;
    }
    KV *kv = &l->items[l->n];
    kv->key = (Slice){(const uint8_t *)"", 0};
    kv->value = (Slice){(const uint8_t *)"", 0};
    int has_value = 0;
    Reader r = reader(in);
    while (r.p < r.end) {
        uint32_t field, wire;
        TRY(read_tag(&r, &field, &wire));
        if (field == 1) {
            EXPECT_WIRE(wire, 2);
            TRY(read_string(&r, &kv->key));
        } else if (field == 2) {
            EXPECT_WIRE(wire, 2);
            if (has_value++) return FALLBACK; /* a repeated message field: protobuf merges */
            TRY(read_len(&r, &kv->value));
        } else {
            TRY(skip_field(&r, wire));
        }
    }
    l->n++;
    return OK;
}

static uint64_t key_hash(Slice key) { /* FNV-1a */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < key.n; i++) h = (h ^ key.p[i]) * 1099511628211ULL;
    return h;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Python builds a dict: the last duplicate wins but keeps the first one's place. Rare enough to
 * leave to Python. Short lists compare pairwise; long ones sort key hashes, so a hostile request
 * of many wide spans costs n log n, not n^2 (an equal hash, even without equal keys, only sends
 * the request to Python). */
static int kvlist_check_unique(const KVList *l) {
    if (l->n > MAX_KEYS) return FALLBACK;
    if (l->n <= 16) {
        for (size_t i = 1; i < l->n; i++) {
            const Slice a = l->items[i].key;
            for (size_t j = 0; j < i; j++) {
                const Slice b = l->items[j].key;
                if (a.n == b.n && memcmp(a.p, b.p, a.n) == 0) return FALLBACK;
            }
        }
        return OK;
    }
    uint64_t hashes[MAX_KEYS];
    for (size_t i = 0; i < l->n; i++) hashes[i] = key_hash(l->items[i].key);
    qsort(hashes, l->n, sizeof hashes[0], compare_u64);
    for (size_t i = 1; i < l->n; i++)
        if (hashes[i] == hashes[i - 1]) return FALLBACK;
    return OK;
}

/* Reads repeated KeyValue field `want` of a KeyValueList or ArrayValue-like message. */
static int kvlist_parse(KVList *l, Slice in) {
    Reader r = reader(in);
    while (r.p < r.end) {
        uint32_t field, wire;
        Slice s;
        TRY(read_tag(&r, &field, &wire));
        if (field == 1) {
            EXPECT_WIRE(wire, 2);
            TRY(read_len(&r, &s));
            TRY(kvlist_push(l, s));
        } else {
            TRY(skip_field(&r, wire));
        }
    }
    return kvlist_check_unique(l);
}

static const KV *kvlist_find(const KVList *l, const char *key, size_t n) {
    for (size_t i = 0; i < l->n; i++) {
        const KV *kv = &l->items[i];
        if (kv->key.n == n && memcmp(kv->key.p, key, n) == 0) return kv;
    }
    return NULL;
}

/* ------------------------------------------------------------------ JSON, as orjson writes it */

static const char HEX[] = "0123456789abcdef";

static int json_str(Buf *b, const uint8_t *s, size_t n) {
    TRY(buf_grow(b, n + 2));
    b->p[b->len++] = '"';
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        TRY(buf_put(b, s + start, i - start));
        start = i + 1;
        switch (c) {
            case '"': TRY(PUT_LIT(b, "\\\"")); break;
            case '\\': TRY(PUT_LIT(b, "\\\\")); break;
            case '\b': TRY(PUT_LIT(b, "\\b")); break;
            case '\t': TRY(PUT_LIT(b, "\\t")); break;
            case '\n': TRY(PUT_LIT(b, "\\n")); break;
            case '\f': TRY(PUT_LIT(b, "\\f")); break;
            case '\r': TRY(PUT_LIT(b, "\\r")); break;
            default: {
                char esc[6] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15]};
                TRY(buf_put(b, esc, 6));
            }
        }
    }
    TRY(buf_put(b, s + start, n - start));
    return buf_ch(b, '"');
}

static int json_int(Buf *b, int64_t v) {
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return buf_put(b, tmp, (size_t)k);
}

static int json_uint(Buf *b, uint64_t v) {
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    return buf_put(b, tmp, (size_t)k);
}

/* The shortest digits that read back as the same double, laid out as orjson does: positional
 * from 1e-5 up to 1e16 (with ".0" on whole numbers), else d.ddde+N. NaN and infinities are null. */
static int json_double(Buf *b, double d) {
    if (!isfinite(d)) return PUT_LIT(b, "null");
    char sci[40], cand[48], digits[24], out[64];
    int negative = signbit(d) != 0, n = 0, exponent = 0, done = 0;
    double magnitude = fabs(d);
    /* For each length, printf's nearest decimal, then the decimals one unit above and below it
     * in the last digit: around powers of two the interval that reads back as d is lopsided,
     * and the shortest decimal inside it need not be the nearest one. */
    for (int precision = 1; precision <= 17 && !done; precision++) {
        snprintf(sci, sizeof sci, "%.*e", precision - 1, magnitude);
        uint64_t mantissa = 0;
        const char *p = sci;
        for (; *p && *p != 'e'; p++)
            if (*p != '.') mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        int e10 = atoi(p + 1);
        const int64_t deltas[3] = {0, 1, -1};
        for (int i = 0; i < 3 && !done; i++) {
            uint64_t m = mantissa + (uint64_t)deltas[i];
            int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)m);
            if (m == 0 || len != precision) continue;
            snprintf(cand, sizeof cand, "%se%d", digits, e10 - (precision - 1));
            if (strtod(cand, NULL) == magnitude) {
                done = 1;
                n = len;
                exponent = e10;
            }
        }
    }
    if (!done) { /* zero, which needs no search */
        digits[0] = '0';
        n = 1;
        exponent = 0;
    }
    while (n > 1 && digits[n - 1] == '0') n--;
    int k = 0;
    if (negative) out[k++] = '-';
    if (exponent >= -5 && exponent < 16) {
        if (exponent >= 0) {
            for (int i = 0; i <= exponent; i++) out[k++] = i < n ? digits[i] : '0';
            out[k++] = '.';
            if (n > exponent + 1)
                for (int i = exponent + 1; i < n; i++) out[k++] = digits[i];
            else
                out[k++] = '0';
        } else {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -exponent - 1; i++) out[k++] = '0';
            for (int i = 0; i < n; i++) out[k++] = digits[i];
        }
    } else {
        out[k++] = digits[0];
        if (n > 1) {
            out[k++] = '.';
            for (int i = 1; i < n; i++) out[k++] = digits[i];
        }
        k += snprintf(out + k, sizeof out - (size_t)k, "e%c%d", exponent < 0 ? '-' : '+', abs(exponent));
    }
    return buf_put(b, out, (size_t)k);
}

static int json_base64(Buf *b, Slice s) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    TRY(buf_grow(b, (s.n + 2) / 3 * 4 + 2));
    uint8_t *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= s.n; i += 3) {
        uint32_t v = (uint32_t)s.p[i] << 16 | (uint32_t)s.p[i + 1] << 8 | s.p[i + 2];
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = A[(v >> 6) & 63];
        *o++ = A[v & 63];
    }
    if (s.n - i == 1) {
        uint32_t v = (uint32_t)s.p[i] << 16;
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (s.n - i == 2) {
        uint32_t v = (uint32_t)s.p[i] << 16 | (uint32_t)s.p[i + 1] << 8;
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = A[(v >> 6) & 63];
        *o++ = '=';
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return OK;
}

static int json_kvs(Buf *b, const KVList *l, int depth);

static int json_value(Buf *b, const Value *v, int depth) {
    if (depth > MAX_DEPTH) return FALLBACK;
    switch (v->kind) {
        case V_NONE: return PUT_LIT(b, "null");
        case V_STR: return json_str(b, v->s.p, v->s.n);
        case V_BOOL: return v->u ? PUT_LIT(b, "true") : PUT_LIT(b, "false");
        case V_INT: return json_int(b, (int64_t)v->u);
        case V_DOUBLE: return json_double(b, v->d);
        case V_BYTES: return json_base64(b, v->s);
        case V_ARRAY: {
            Reader r = reader(v->s);
            int first = 1;
            TRY(buf_ch(b, '['));
            while (r.p < r.end) {
                uint32_t field, wire;
                Slice s;
                Value item;
                TRY(read_tag(&r, &field, &wire));
                if (field != 1) {
                    TRY(skip_field(&r, wire));
                    continue;
                }
                EXPECT_WIRE(wire, 2);
                TRY(read_len(&r, &s));
                TRY(parse_value(s, &item));
                if (!first) TRY(buf_ch(b, ','));
                first = 0;
                TRY(json_value(b, &item, depth + 1));
            }
            return buf_ch(b, ']');
        }
        case V_KVLIST: {
            KVList l = {0};
            int rc = kvlist_parse(&l, v->s);
            if (rc == OK) rc = json_kvs(b, &l, depth + 1);
            kvlist_free(&l);
            return rc;
        }
    }
    return FALLBACK;
}

static int json_kvs(Buf *b, const KVList *l, int depth) {
    TRY(buf_ch(b, '{'));
    for (size_t i = 0; i < l->n; i++) {
        Value v;
        if (i) TRY(buf_ch(b, ','));
        TRY(json_str(b, l->items[i].key.p, l->items[i].key.n));
        TRY(buf_ch(b, ':'));
        TRY(parse_value(l->items[i].value, &v));
        TRY(json_value(b, &v, depth));
    }
    return buf_ch(b, '}');
}

/* ------------------------------------------------------------------ Arrow columns */

enum { COL_STR, COL_I64, COL_F64 };

typedef struct {
    int type;
    Buf data;      /* utf8 bytes, or 8-byte values */
    Buf offsets;   /* int32, COL_STR only */
    Buf validity;  /* one bit a row */
    int64_t rows, nulls;
} Column;

static int col_set_valid(Column *c, int valid) {
    size_t byte = (size_t)(c->rows >> 3);
    if (byte >= c->validity.len) {
        TRY(buf_ch(&c->validity, 0));
    }
    if (valid)
        c->validity.p[byte] |= (uint8_t)(1u << (c->rows & 7));
    else
        c->nulls++;
    c->rows++;
    return OK;
}

/* Ends a string row whose bytes were written to c->data since the previous row. */
static int col_str_end(Column *c) {
    if (c->data.len > INT32_MAX) return FALLBACK;
    int32_t end = (int32_t)c->data.len;
    TRY(buf_put(&c->offsets, &end, 4));
    return col_set_valid(c, 1);
}

static int col_str(Column *c, const uint8_t *s, size_t n) {
    TRY(buf_put(&c->data, s, n));
    return col_str_end(c);
}

static int col_null(Column *c) {
    if (c->type == COL_STR) {
        int32_t end = (int32_t)c->data.len;
        TRY(buf_put(&c->offsets, &end, 4));
    } else {
        uint64_t zero = 0;
        TRY(buf_put(&c->data, &zero, 8));
    }
    return col_set_valid(c, 0);
}

static int col_i64(Column *c, int64_t v) {
    TRY(buf_put(&c->data, &v, 8));
    return col_set_valid(c, 1);
}

static int col_f64(Column *c, double v) {
    TRY(buf_put(&c->data, &v, 8));
    return col_set_valid(c, 1);
}

/* Lowercase hex of the bytes, as Python's bytes.hex(). */
static int put_hex(Buf *b, Slice s) {
    TRY(buf_grow(b, s.n * 2));
    for (size_t i = 0; i < s.n; i++) {
        b->p[b->len++] = (uint8_t)HEX[s.p[i] >> 4];
        b->p[b->len++] = (uint8_t)HEX[s.p[i] & 15];
    }
    return OK;
}

static int col_hex(Column *c, Slice s) {
    TRY(put_hex(&c->data, s));
    return col_str_end(c);
}

/* Column order = SPAN_SCHEMA (spanlake/store/schema.py); the module exports COLUMNS to check. */
enum {
    C_TRACE_ID, C_SPAN_ID, C_PARENT_SPAN_ID, C_TRACE_STATE, C_NAME, C_KIND, C_STATUS,
    C_STATUS_MESSAGE, C_START_TIME, C_END_TIME, C_DURATION_MS, C_SERVICE_NAME, C_SCOPE_NAME,
    C_SCOPE_VERSION, C_SPAN_TYPE, C_MODEL, C_INPUT, C_OUTPUT, C_INPUT_TOKENS, C_OUTPUT_TOKENS,
    C_TOTAL_TOKENS, C_SESSION_ID, C_USER_ID, C_ATTRIBUTES, C_RESOURCE_ATTRIBUTES,
    C_SCOPE_ATTRIBUTES, C_EVENTS, C_LINKS, C_FLAGS, C_DROPPED_COUNTS, N_COLUMNS
};

static const char *COLUMN_NAMES[N_COLUMNS] = {
    "trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind", "status",
    "status_message", "start_time", "end_time", "duration_ms", "service_name", "scope_name",
    "scope_version", "span_type", "model", "input", "output", "input_tokens", "output_tokens",
    "total_tokens", "session_id", "user_id", "attributes", "resource_attributes",
    "scope_attributes", "events", "links", "flags", "dropped_counts",
};

static int column_type(int i) {
    switch (i) {
        case C_START_TIME: case C_END_TIME: case C_INPUT_TOKENS: case C_OUTPUT_TOKENS:
        case C_TOTAL_TOKENS: case C_FLAGS:
            return COL_I64;
        case C_DURATION_MS:
            return COL_F64;
        default:
            return COL_STR;
    }
}

/* ------------------------------------------------------------------ LLM conventions (semconv.py) */

typedef struct {
    const char *const *keys;
    size_t n;
} Keys;

#define KEYS(...) {(const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)}

static const Keys MODEL_KEYS = KEYS("gen_ai.request.model", "gen_ai.response.model", "llm.model_name",
                                    "embedding.model_name", "llm.request.model", "llm.response.model");
static const Keys INPUT_TOKEN_KEYS = KEYS("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                          "llm.token_count.prompt", "llm.usage.prompt_tokens");
static const Keys OUTPUT_TOKEN_KEYS = KEYS("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                           "llm.token_count.completion", "llm.usage.completion_tokens");
static const Keys TOTAL_TOKEN_KEYS = KEYS("llm.usage.total_tokens", "llm.token_count.total", "gen_ai.usage.total_tokens");
static const Keys SESSION_KEYS = KEYS("session.id", "gen_ai.conversation.id", "traceloop.association.properties.session_id");
static const Keys USER_KEYS = KEYS("user.id", "traceloop.association.properties.user_id", "enduser.id");
static const Keys INPUT_VALUE_KEYS = KEYS("gen_ai.input.messages", "gen_ai.prompt");
static const Keys INPUT_FALLBACK_KEYS = KEYS("input.value", "traceloop.entity.input");
static const Keys OUTPUT_VALUE_KEYS = KEYS("gen_ai.output.messages", "gen_ai.completion");
static const Keys OUTPUT_FALLBACK_KEYS = KEYS("output.value", "traceloop.entity.output");
static const Keys KIND_KEYS = KEYS("openinference.span.kind", "traceloop.span.kind");

typedef struct {
    const char *prefix, *role, *content;
} MessageList;

static const MessageList INPUT_LISTS[] = {
    {"gen_ai.prompt.", ".role", ".content"},
    {"llm.input_messages.", ".message.role", ".message.content"},
};
static const MessageList OUTPUT_LISTS[] = {
    {"gen_ai.completion.", ".role", ".content"},
    {"llm.output_messages.", ".message.role", ".message.content"},
};

static const char *const OPERATION_TO_TYPE[][2] = {
    {"chat", "llm"}, {"text_completion", "llm"}, {"completion", "llm"}, {"generate_content", "llm"},
    {"embeddings", "embedding"}, {"embedding", "embedding"}, {"execute_tool", "tool"},
    {"invoke_agent", "agent"}, {"create_agent", "agent"},
};

/* An attribute's value as Python's semconv sees it: absent and unset are both None (found = 0). */
static int attr_get(const KVList *attrs, const char *key, Value *v, int *found) {
    const KV *kv = kvlist_find(attrs, key, strlen(key));
    *found = 0;
    if (kv == NULL) return OK;
    TRY(parse_value(kv->value, v));
    *found = v->kind != V_NONE;
    return OK;
}

/* Writes the value as _first_text does (strings as sent, anything else as JSON); no row end. */
static int write_text(Buf *b, const Value *v) {
    if (v->kind == V_STR) return buf_put(b, v->s.p, v->s.n);
    if (v->kind == V_BYTES) { /* decode.py turns bytes into base64 text before semconv sees them */
        size_t start = b->len;
        TRY(json_base64(b, v->s));
        memmove(b->p + start, b->p + start + 1, b->len - start - 2); /* drop the quotes */
        b->len -= 2;
        return OK;
    }
    return json_value(b, v, 1);
}

/* _first_text: the first present key's value as text, or a null row. */
static int col_first_text(Column *c, const KVList *attrs, const Keys *keys, int *found) {
    for (size_t i = 0; i < keys->n; i++) {
        Value v;
        TRY(attr_get(attrs, keys->keys[i], &v, found));
        if (*found) {
            TRY(write_text(&c->data, &v));
            return col_str_end(c);
        }
    }
    return OK; /* caller decides: null, or another source */
}

static int is_py_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

/* _as_int: 1 in *ok when the value is a usable token count. */
static int as_int(const Value *v, int64_t *out, int *ok) {
    *ok = 0;
    if (v->kind == V_BYTES) return FALLBACK; /* base64 text that may be all digits: rare */
    if (v->kind == V_INT) {
        *out = (int64_t)v->u;
        *ok = 1;
    } else if (v->kind == V_DOUBLE) {
        if (v->d == v->d && fabs(v->d) < 9223372036854775808.0) {
            *out = (int64_t)v->d;
            *ok = 1;
        }
    } else if (v->kind == V_STR) {
        const uint8_t *s = v->s.p, *e = v->s.p + v->s.n;
        for (const uint8_t *q = s; q < e; q++)
            if (*q >= 0x80) return FALLBACK; /* str.strip() knows Unicode spaces */
        while (s < e && is_py_space(*s)) s++;
        while (e > s && is_py_space(e[-1])) e--;
        size_t n = (size_t)(e - s);
        if (n == 0 || n >= 19) return OK;
        int64_t value = 0;
        for (const uint8_t *q = s; q < e; q++) {
            if (*q < '0' || *q > '9') return OK;
            value = value * 10 + (*q - '0');
        }
        *out = value;
        *ok = 1;
    }
    return OK;
}

static int first_int(const KVList *attrs, const Keys *keys, int64_t *out, int *ok) {
    *ok = 0;
    for (size_t i = 0; i < keys->n; i++) {
        Value v;
        int found;
        TRY(attr_get(attrs, keys->keys[i], &v, &found));
        if (!found) continue;
        TRY(as_int(&v, out, ok));
        if (*ok) return OK;
    }
    return OK;
}

/* ASCII lower-case copy into tmp; non-ASCII falls back (str.lower() is Unicode-aware). */
static int lower_ascii(const Slice s, Buf *tmp) {
    tmp->len = 0;
    TRY(buf_grow(tmp, s.n));
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = s.p[i];
        if (c >= 0x80) return FALLBACK;
        tmp->p[tmp->len++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
    }
    return OK;
}

static int col_span_type(Column *c, const KVList *attrs, int has_model, Buf *tmp) {
    for (size_t i = 0; i < KIND_KEYS.n; i++) {
        const KV *kv = kvlist_find(attrs, KIND_KEYS.keys[i], strlen(KIND_KEYS.keys[i]));
        Value v;
        if (kv == NULL) continue;
        TRY(parse_value(kv->value, &v));
        if (v.kind == V_BYTES && v.s.n) return FALLBACK; /* Python lower-cases its base64 text */
        if (v.kind == V_STR && v.s.n) {
            TRY(lower_ascii(v.s, tmp));
            return col_str(c, tmp->p, tmp->len);
        }
    }
    const KV *kv = kvlist_find(attrs, "gen_ai.operation.name", 21);
    if (kv != NULL) {
        Value v;
        TRY(parse_value(kv->value, &v));
        if (v.kind == V_BYTES && v.s.n) return FALLBACK;
        if (v.kind == V_STR && v.s.n) {
            TRY(lower_ascii(v.s, tmp));
            for (size_t i = 0; i < sizeof OPERATION_TO_TYPE / sizeof OPERATION_TO_TYPE[0]; i++) {
                const char *op = OPERATION_TO_TYPE[i][0];
                if (strlen(op) == tmp->len && memcmp(op, tmp->p, tmp->len) == 0)
                    return col_str(c, (const uint8_t *)OPERATION_TO_TYPE[i][1], strlen(OPERATION_TO_TYPE[i][1]));
            }
            return col_str(c, tmp->p, tmp->len);
        }
    }
    if (has_model) return col_str(c, (const uint8_t *)"llm", 3);
    return col_null(c);
}

/* `<prefix><i><suffix>` into key (a small fixed buffer is enough: the prefixes are ours). */
static void message_key(char *key, size_t size, const char *prefix, size_t i, const char *suffix) {
    snprintf(key, size, "%s%zu%s", prefix, i, suffix);
}

static int col_io(Column *c, const KVList *attrs, const Keys *value_keys, const MessageList *lists,
                  const Keys *fallback_keys) {
    int found;
    TRY(col_first_text(c, attrs, value_keys, &found));
    if (found) return OK;
    for (size_t li = 0; li < 2; li++) {
        const MessageList *m = &lists[li];
        char role_key[96], content_key[96];
        message_key(role_key, sizeof role_key, m->prefix, 0, m->role);
        message_key(content_key, sizeof content_key, m->prefix, 0, m->content);
        if (!kvlist_find(attrs, role_key, strlen(role_key)) && !kvlist_find(attrs, content_key, strlen(content_key)))
            continue;
        Buf *b = &c->data;
        TRY(buf_ch(b, '['));
        for (size_t i = 0; i <= attrs->n; i++) {
            Value role, content;
            int has_role, has_content;
            message_key(role_key, sizeof role_key, m->prefix, i, m->role);
            message_key(content_key, sizeof content_key, m->prefix, i, m->content);
            TRY(attr_get(attrs, role_key, &role, &has_role));
            TRY(attr_get(attrs, content_key, &content, &has_content));
            if (!has_role && !has_content) break;
            if (i) TRY(buf_ch(b, ','));
            TRY(PUT_LIT(b, "{\"role\":"));
            if (has_role) TRY(json_value(b, &role, 1)); else TRY(PUT_LIT(b, "null"));
            TRY(PUT_LIT(b, ",\"content\":"));
            if (has_content) TRY(json_value(b, &content, 1)); else TRY(PUT_LIT(b, "null"));
            TRY(buf_ch(b, '}'));
        }
        TRY(buf_ch(b, ']'));
        return col_str_end(c);
    }
    TRY(col_first_text(c, attrs, fallback_keys, &found));
    return found ? OK : col_null(c);
}

static int col_opt_int(Column *c, int ok, int64_t v) { return ok ? col_i64(c, v) : col_null(c); }

/* _first_text for a column of its own: the value, or a null row. */
static int col_first_text_or_null(Column *c, const KVList *attrs, const Keys *keys, int *found) {
    TRY(col_first_text(c, attrs, keys, found));
    return *found ? OK : col_null(c);
}

static int map_llm_fields(Column *cols, const KVList *attrs, Buf *tmp) {
    int has_model, ok_in, ok_out, ok_total, found;
    int64_t in_tok = 0, out_tok = 0, total = 0;
    /* model first: span_type depends on it, but span_type's column comes first: write model to
     * its column now (columns are independent), then span_type. */
    TRY(col_first_text_or_null(&cols[C_MODEL], attrs, &MODEL_KEYS, &has_model));
    TRY(first_int(attrs, &INPUT_TOKEN_KEYS, &in_tok, &ok_in));
    TRY(first_int(attrs, &OUTPUT_TOKEN_KEYS, &out_tok, &ok_out));
    TRY(first_int(attrs, &TOTAL_TOKEN_KEYS, &total, &ok_total));
    if (!ok_total && (ok_in || ok_out)) {
        total = (ok_in ? in_tok : 0) + (ok_out ? out_tok : 0);
        ok_total = 1;
    }
    TRY(col_span_type(&cols[C_SPAN_TYPE], attrs, has_model, tmp));
    TRY(col_io(&cols[C_INPUT], attrs, &INPUT_VALUE_KEYS, INPUT_LISTS, &INPUT_FALLBACK_KEYS));
    TRY(col_io(&cols[C_OUTPUT], attrs, &OUTPUT_VALUE_KEYS, OUTPUT_LISTS, &OUTPUT_FALLBACK_KEYS));
    TRY(col_opt_int(&cols[C_INPUT_TOKENS], ok_in, in_tok));
    TRY(col_opt_int(&cols[C_OUTPUT_TOKENS], ok_out, out_tok));
    TRY(col_opt_int(&cols[C_TOTAL_TOKENS], ok_total, total));
    TRY(col_first_text_or_null(&cols[C_SESSION_ID], attrs, &SESSION_KEYS, &found));
    TRY(col_first_text_or_null(&cols[C_USER_ID], attrs, &USER_KEYS, &found));
    return OK;
}

/* ------------------------------------------------------------------ spans */

typedef struct {
    Column cols[N_COLUMNS];
    KVList attrs;      /* the current span's, reused */
    KVList attrs2;     /* events' and links' */
    Buf scope_json;    /* JSON of the current scope's attributes */
    Buf resource_json; /* JSON of the current resource's attributes */
    Buf service_name;
    int has_service_name;
    Slice scope_name, scope_version;
    uint32_t resource_dropped, scope_dropped;
    Buf tmp;
} Decoder;

static int write_event(Decoder *d, Buf *b, Slice in) {
    Reader r = reader(in);
    uint64_t time = 0;
    uint32_t dropped = 0;
    Slice name = {(const uint8_t *)"", 0};
    d->attrs2.n = 0;
    while (r.p < r.end) {
        uint32_t field, wire;
        Slice s;
        TRY(read_tag(&r, &field, &wire));
        switch (field) {
            case 1: EXPECT_WIRE(wire, 1); TRY(read_fixed64(&r, &time)); break;
            case 2: EXPECT_WIRE(wire, 2); TRY(read_string(&r, &name)); break;
            case 3: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &s)); TRY(kvlist_push(&d->attrs2, s)); break;
            case 4: EXPECT_WIRE(wire, 0); TRY(read_uint32_varint(&r, &dropped)); break;
            default: TRY(skip_field(&r, wire));
        }
    }
    TRY(kvlist_check_unique(&d->attrs2));
    TRY(PUT_LIT(b, "{\"name\":"));
    TRY(json_str(b, name.p, name.n));
    TRY(PUT_LIT(b, ",\"time_unix_nano\":"));
    TRY(json_uint(b, time));
    TRY(PUT_LIT(b, ",\"attributes\":"));
    TRY(json_kvs(b, &d->attrs2, 1));
    if (dropped) {
        TRY(PUT_LIT(b, ",\"dropped_attributes_count\":"));
        TRY(json_uint(b, dropped));
    }
    return buf_ch(b, '}');
}

static int write_hex_json(Buf *b, Slice s) {
    TRY(buf_ch(b, '"'));
    TRY(put_hex(b, s));
    return buf_ch(b, '"');
}

static int write_link(Decoder *d, Buf *b, Slice in) {
    Reader r = reader(in);
    Slice trace_id = {(const uint8_t *)"", 0}, span_id = trace_id, state = trace_id;
    uint32_t dropped = 0, flags = 0;
    d->attrs2.n = 0;
    while (r.p < r.end) {
        uint32_t field, wire;
        Slice s;
        TRY(read_tag(&r, &field, &wire));
        switch (field) {
            case 1: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &trace_id)); break;
            case 2: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &span_id)); break;
            case 3: EXPECT_WIRE(wire, 2); TRY(read_string(&r, &state)); break;
            case 4: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &s)); TRY(kvlist_push(&d->attrs2, s)); break;
            case 5: EXPECT_WIRE(wire, 0); TRY(read_uint32_varint(&r, &dropped)); break;
            case 6: EXPECT_WIRE(wire, 5); TRY(read_fixed32(&r, &flags)); break;
            default: TRY(skip_field(&r, wire));
        }
    }
    TRY(kvlist_check_unique(&d->attrs2));
    TRY(PUT_LIT(b, "{\"trace_id\":"));
    TRY(write_hex_json(b, trace_id));
    TRY(PUT_LIT(b, ",\"span_id\":"));
    TRY(write_hex_json(b, span_id));
    TRY(PUT_LIT(b, ",\"trace_state\":"));
    TRY(json_str(b, state.p, state.n));
    TRY(PUT_LIT(b, ",\"attributes\":"));
    TRY(json_kvs(b, &d->attrs2, 1));
    if (flags) {
        TRY(PUT_LIT(b, ",\"flags\":"));
        TRY(json_uint(b, flags));
    }
    if (dropped) {
        TRY(PUT_LIT(b, ",\"dropped_attributes_count\":"));
        TRY(json_uint(b, dropped));
    }
    return buf_ch(b, '}');
}

typedef int (*ItemWriter)(Decoder *d, Buf *b, Slice item);

/* A JSON array of the items (events or links) as one row of the column. */
static int col_json_list(Decoder *d, Column *c, const Slice *items, size_t n, ItemWriter write) {
    TRY(buf_ch(&c->data, '['));
    for (size_t i = 0; i < n; i++) {
        if (i) TRY(buf_ch(&c->data, ','));
        TRY(write(d, &c->data, items[i]));
    }
    TRY(buf_ch(&c->data, ']'));
    return col_str_end(c);
}

static int is_zero(Slice s) {
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i]) return 0;
    return 1;
}

static int col_opt_str(Column *c, Slice s) { return s.n ? col_str(c, s.p, s.n) : col_null(c); }

static int decode_span(Decoder *d, Slice in) {
    static const char *KIND_NAMES[] = {"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
    static const char *STATUS_NAMES[] = {"UNSET", "OK", "ERROR"};
    const Slice empty = {(const uint8_t *)"", 0};
    Slice trace_id = empty, span_id = empty, parent = empty, state = empty, name = empty;
    Slice status = empty, status_message = empty;
    uint64_t kind = 0, start = 0, end = 0, code = 0;
    uint32_t flags = 0, dropped_attrs = 0, dropped_events = 0, dropped_links = 0;
    int has_status = 0;
    /* Events and links are written after the scan: remember where they are. */
    Slice events[64], links[64];
    size_t n_events = 0, n_links = 0;
    Reader r = reader(in);
    Column *cols = d->cols;
    d->attrs.n = 0;
    while (r.p < r.end) {
        uint32_t field, wire;
        Slice s;
        TRY(read_tag(&r, &field, &wire));
        switch (field) {
            case 1: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &trace_id)); break;
            case 2: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &span_id)); break;
            case 3: EXPECT_WIRE(wire, 2); TRY(read_string(&r, &state)); break;
            case 4: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &parent)); break;
            case 5: EXPECT_WIRE(wire, 2); TRY(read_string(&r, &name)); break;
            case 6: EXPECT_WIRE(wire, 0); TRY(read_varint(&r, &kind)); break;
            case 7: EXPECT_WIRE(wire, 1); TRY(read_fixed64(&r, &start)); break;
            case 8: EXPECT_WIRE(wire, 1); TRY(read_fixed64(&r, &end)); break;
            case 9: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &s)); TRY(kvlist_push(&d->attrs, s)); break;
            case 10: EXPECT_WIRE(wire, 0); TRY(read_uint32_varint(&r, &dropped_attrs)); break;
            case 11:
                EXPECT_WIRE(wire, 2);
                if (n_events == 64) return FALLBACK;
                TRY(read_len(&r, &events[n_events++]));
                break;
            case 12: EXPECT_WIRE(wire, 0); TRY(read_uint32_varint(&r, &dropped_events)); break;
            case 13:
                EXPECT_WIRE(wire, 2);
                if (n_links == 64) return FALLBACK;
                TRY(read_len(&r, &links[n_links++]));
                break;
            case 14: EXPECT_WIRE(wire, 0); TRY(read_uint32_varint(&r, &dropped_links)); break;
            case 15:
                EXPECT_WIRE(wire, 2);
                if (has_status++) return FALLBACK; /* protobuf merges a repeated message field */
                TRY(read_len(&r, &status));
                break;
            case 16: EXPECT_WIRE(wire, 5); TRY(read_fixed32(&r, &flags)); break;
            default: TRY(skip_field(&r, wire));
        }
    }
    /* Spans the Python decoder rejects one by one (partial success) go back to it whole. */
    if (trace_id.n != 16 || span_id.n != 8 || is_zero(trace_id) || is_zero(span_id) ||
        (parent.n && parent.n != 8) || start > INT64_MAX_U || end > INT64_MAX_U || kind > 5)
        return FALLBACK;
    Reader sr = reader(status);
    while (sr.p < sr.end) {
        uint32_t field, wire;
        TRY(read_tag(&sr, &field, &wire));
        if (field == 2) {
            EXPECT_WIRE(wire, 2);
            TRY(read_string(&sr, &status_message));
        } else if (field == 3) {
            EXPECT_WIRE(wire, 0);
            TRY(read_varint(&sr, &code));
        } else {
            TRY(skip_field(&sr, wire));
        }
    }
    if (code > 2) return FALLBACK;
    TRY(kvlist_check_unique(&d->attrs));

    TRY(col_hex(&cols[C_TRACE_ID], trace_id));
    TRY(col_hex(&cols[C_SPAN_ID], span_id));
    if (parent.n && !is_zero(parent))
        TRY(col_hex(&cols[C_PARENT_SPAN_ID], parent));
    else
        TRY(col_null(&cols[C_PARENT_SPAN_ID]));
    TRY(col_opt_str(&cols[C_TRACE_STATE], state));
    TRY(col_str(&cols[C_NAME], name.p, name.n));
    TRY(col_str(&cols[C_KIND], (const uint8_t *)KIND_NAMES[kind], strlen(KIND_NAMES[kind])));
    TRY(col_str(&cols[C_STATUS], (const uint8_t *)STATUS_NAMES[code], strlen(STATUS_NAMES[code])));
    TRY(col_opt_str(&cols[C_STATUS_MESSAGE], status_message));
    TRY(col_i64(&cols[C_START_TIME], (int64_t)start));
    TRY(col_i64(&cols[C_END_TIME], (int64_t)end));
    TRY(col_f64(&cols[C_DURATION_MS], (double)((int64_t)end - (int64_t)start) / 1e6));
    if (d->has_service_name)
        TRY(col_str(&cols[C_SERVICE_NAME], d->service_name.p, d->service_name.len));
    else
        TRY(col_null(&cols[C_SERVICE_NAME]));
    TRY(col_opt_str(&cols[C_SCOPE_NAME], d->scope_name));
    TRY(col_opt_str(&cols[C_SCOPE_VERSION], d->scope_version));
    TRY(map_llm_fields(cols, &d->attrs, &d->tmp));
    TRY(json_kvs(&cols[C_ATTRIBUTES].data, &d->attrs, 1));
    TRY(col_str_end(&cols[C_ATTRIBUTES]));
    TRY(col_str(&cols[C_RESOURCE_ATTRIBUTES], d->resource_json.p, d->resource_json.len));
    TRY(col_str(&cols[C_SCOPE_ATTRIBUTES], d->scope_json.p, d->scope_json.len));
    TRY(col_json_list(d, &cols[C_EVENTS], events, n_events, write_event));
    TRY(col_json_list(d, &cols[C_LINKS], links, n_links, write_link));
    TRY(col_i64(&cols[C_FLAGS], flags));
    /* dropped_counts: resource, scope, then the span's own, each only when non-zero */
    Buf *b;
    const char *names[5] = {"resource_attributes", "scope_attributes", "attributes", "events", "links"};
    uint32_t counts[5] = {d->resource_dropped, d->scope_dropped, dropped_attrs, dropped_events, dropped_links};
    int any = 0;
    b = &cols[C_DROPPED_COUNTS].data;
    for (int i = 0; i < 5; i++) {
        if (!counts[i]) continue;
        TRY(buf_ch(b, any ? ',' : '{'));
        any = 1;
        TRY(json_str(b, (const uint8_t *)names[i], strlen(names[i])));
        TRY(buf_ch(b, ':'));
        TRY(json_uint(b, counts[i]));
    }
    if (any) {
        TRY(buf_ch(b, '}'));
        TRY(col_str_end(&cols[C_DROPPED_COUNTS]));
    } else {
        TRY(col_null(&cols[C_DROPPED_COUNTS]));
    }
    return OK;
}

typedef int (*MessageFn)(Decoder *d, Slice message);

/* Calls fn on every occurrence of length-delimited field `want` of a message; skips the rest. */
static int each_message(Decoder *d, Slice in, uint32_t want, MessageFn fn) {
    Reader r = reader(in);
    while (r.p < r.end) {
        uint32_t field, wire;
        Slice s;
        TRY(read_tag(&r, &field, &wire));
        if (field == want) {
            EXPECT_WIRE(wire, 2);
            TRY(read_len(&r, &s));
            TRY(fn(d, s));
        } else {
            TRY(skip_field(&r, wire));
        }
    }
    return OK;
}

/* ResourceSpans and ScopeSpans share a shape: field 1 is their resource or scope (it may come
 * after the spans, so this is a pass of its own), field 3 a schema URL (unused, but upb checks
 * its UTF-8). */
static int read_header(Slice in, Slice *header) {
    Reader r = reader(in);
    Slice url;
    int seen = 0;
    *header = (Slice){(const uint8_t *)"", 0};
    while (r.p < r.end) {
        uint32_t field, wire;
        TRY(read_tag(&r, &field, &wire));
        if (field == 1) {
            EXPECT_WIRE(wire, 2);
            if (seen++) return FALLBACK; /* protobuf merges a repeated message field */
            TRY(read_len(&r, header));
        } else if (field == 3) {
            EXPECT_WIRE(wire, 2);
            TRY(read_string(&r, &url));
        } else {
            TRY(skip_field(&r, wire));
        }
    }
    return OK;
}

static int decode_scope_spans(Decoder *d, Slice in) {
    Slice scope, s;
    TRY(read_header(in, &scope));
    d->scope_name = d->scope_version = (Slice){(const uint8_t *)"", 0};
    d->scope_dropped = 0;
    d->attrs2.n = 0;
    Reader r = reader(scope);
    while (r.p < r.end) {
        uint32_t field, wire;
        TRY(read_tag(&r, &field, &wire));
        switch (field) {
            case 1: EXPECT_WIRE(wire, 2); TRY(read_string(&r, &d->scope_name)); break;
            case 2: EXPECT_WIRE(wire, 2); TRY(read_string(&r, &d->scope_version)); break;
            case 3: EXPECT_WIRE(wire, 2); TRY(read_len(&r, &s)); TRY(kvlist_push(&d->attrs2, s)); break;
            case 4: EXPECT_WIRE(wire, 0); TRY(read_uint32_varint(&r, &d->scope_dropped)); break;
            default: TRY(skip_field(&r, wire));
        }
    }
    TRY(kvlist_check_unique(&d->attrs2));
    d->scope_json.len = 0;
    TRY(json_kvs(&d->scope_json, &d->attrs2, 1));
    return each_message(d, in, 2, decode_span);
}

static int decode_resource(Decoder *d, Slice resource) {
    Reader r = reader(resource);
    d->resource_dropped = 0;
    d->attrs2.n = 0;
    while (r.p < r.end) {
        uint32_t field, wire;
        Slice s;
        TRY(read_tag(&r, &field, &wire));
        if (field == 1) {
            EXPECT_WIRE(wire, 2);
            TRY(read_len(&r, &s));
            TRY(kvlist_push(&d->attrs2, s));
        } else if (field == 2) {
            EXPECT_WIRE(wire, 0);
            TRY(read_uint32_varint(&r, &d->resource_dropped));
        } else {
            TRY(skip_field(&r, wire));
        }
    }
    TRY(kvlist_check_unique(&d->attrs2));
    d->resource_json.len = 0;
    TRY(json_kvs(&d->resource_json, &d->attrs2, 1));
    Value v;
    TRY(attr_get(&d->attrs2, "service.name", &v, &d->has_service_name));
    d->service_name.len = 0;
    if (d->has_service_name) TRY(write_text(&d->service_name, &v));
    return OK;
}

static int decode_resource_spans(Decoder *d, Slice in) {
    Slice resource;
    TRY(read_header(in, &resource));
    TRY(decode_resource(d, resource));
    return each_message(d, in, 2, decode_scope_spans);
}

static int decode_request(Decoder *d, Slice in) { return each_message(d, in, 1, decode_resource_spans); }

static int decoder_init(Decoder *d) {
    memset(d, 0, sizeof *d);
    for (int i = 0; i < N_COLUMNS; i++) {
        d->cols[i].type = column_type(i);
        if (d->cols[i].type == COL_STR) {
            int32_t zero = 0;
            TRY(buf_put(&d->cols[i].offsets, &zero, 4));
        }
    }
    return OK;
}

static void decoder_free(Decoder *d) {
    for (int i = 0; i < N_COLUMNS; i++) {
        free(d->cols[i].data.p);
        free(d->cols[i].offsets.p);
        free(d->cols[i].validity.p);
    }
    kvlist_free(&d->attrs);
    kvlist_free(&d->attrs2);
    free(d->scope_json.p);
    free(d->resource_json.p);
    free(d->service_name.p);
    free(d->tmp.p);
}

/* ------------------------------------------------------------------ Python module */

static PyObject *bytes_of(const Buf *b) { return PyBytes_FromStringAndSize((const char *)b->p, (Py_ssize_t)b->len); }

/* (validity bytes | None, offsets bytes | None, data bytes, null count) */
static PyObject *column_tuple(const Column *c) {
    PyObject *validity = c->nulls ? bytes_of(&c->validity) : (Py_INCREF(Py_None), Py_None);
    PyObject *offsets = c->type == COL_STR ? bytes_of(&c->offsets) : (Py_INCREF(Py_None), Py_None);
    PyObject *data = bytes_of(&c->data);
    if (validity == NULL || offsets == NULL || data == NULL) {
        Py_XDECREF(validity);
        Py_XDECREF(offsets);
        Py_XDECREF(data);
        return NULL;
    }
    PyObject *out = Py_BuildValue("(NNNL)", validity, offsets, data, (long long)c->nulls);
    return out;
}

PyDoc_STRVAR(decode_doc,
             "decode(body) -> (rows, columns) | None\n\n"
             "Decode an ExportTraceServiceRequest into SPAN_SCHEMA column buffers, one\n"
             "(validity, offsets, data, null_count) tuple per column in COLUMNS order. None: the\n"
             "request needs the Python decoder (malformed, spans to reject, or a rare shape).");

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*:decode", &view)) return NULL;
    Decoder *d = malloc(sizeof(Decoder));
    if (d == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    int rc = decoder_init(d);
    if (rc == OK) {
        Slice body = {(const uint8_t *)view.buf, (size_t)view.len};
        Py_BEGIN_ALLOW_THREADS
        rc = decode_request(d, body);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    PyObject *result = NULL;
    if (rc == OK) {
        PyObject *columns = PyList_New(N_COLUMNS);
        if (columns != NULL) {
            int failed = 0;
            for (int i = 0; i < N_COLUMNS && !failed; i++) {
                PyObject *col = column_tuple(&d->cols[i]);
                if (col == NULL)
                    failed = 1;
                else
                    PyList_SET_ITEM(columns, i, col);
            }
            if (failed)
                Py_DECREF(columns);
            else
                result = Py_BuildValue("(LN)", (long long)d->cols[0].rows, columns);
        }
    } else if (rc == NOMEM) {
        PyErr_NoMemory();
    } else {
        result = Py_None;
        Py_INCREF(result);
    }
    decoder_free(d);
    free(d);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlp_native", "Compiled fast path of spanlake's OTLP protobuf decoder.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__otlp_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *names = PyTuple_New(N_COLUMNS);
    if (names == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (int i = 0; i < N_COLUMNS; i++) {
        PyObject *s = PyUnicode_FromString(COLUMN_NAMES[i]);
        if (s == NULL) {
            Py_DECREF(names);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, s);
    }
    if (PyModule_AddObject(m, "COLUMNS", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
