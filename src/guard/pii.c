/* The PII scanner: candidates tried only where a word starts (or at '@' and "://"), found
 * 64 bytes at a time as a bitmap, and every candidate checked by its validator before it
 * counts.
 * A number that fails its validator is skipped one group at a time, so the pieces of an
 * invalid card or SSN are not found again as something smaller.  docs/guard.md lists
 * the formats and the rules. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bytemask.h"
#include "rules.h"

static const char *const pii_names[AL_PII_COUNT] = {
    "email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "url_credentials", "secret",
    "date_of_birth",
};
static const char *const pii_tags[AL_PII_COUNT] = {
    "EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IPV4", "IPV6", "URL_CREDENTIALS", "SECRET",
    "DATE_OF_BIRTH",
};

const char *al_pii_name(al_pii_type t) { return (unsigned)t < AL_PII_COUNT ? pii_names[t] : "?"; }
const char *al_pii_tag(al_pii_type t) { return (unsigned)t < AL_PII_COUNT ? pii_tags[t] : "PII"; }

int al_pii_parse(const char *name, al_pii_type *out)
{
    for (int i = 0; name && i < AL_PII_COUNT; i++)
        if (strcmp(name, pii_names[i]) == 0) {
            *out = (al_pii_type)i;
            return 0;
        }
    return al_fail("unknown PII type '%s' (email, phone, card, iban, ssn, ipv4, ipv6, "
                   "url_credentials, secret, date_of_birth)", name ? name : "(null)");
}

static bool is_digit(unsigned c) { return c - '0' < 10; }
static bool is_alpha(unsigned c) { return (c | 32) - 'a' < 26; }
static bool is_upper(unsigned c) { return c - 'A' < 26; }
static bool is_alnum(unsigned c) { return is_digit(c) || is_alpha(c); }
static bool is_hex(unsigned c) { return is_digit(c) || (c | 32) - 'a' < 6; }
static bool in_set(unsigned c, const char *set) { return c && strchr(set, (int)c); }

typedef struct scan {
    const unsigned char *s;
    size_t n;
    const bool *on;
    size_t last_end; /* matches never overlap */
    al_pii_match *v;
    int count, cap;
} scan;

static int add(scan *sc, al_pii_type t, size_t start, size_t end, const char *kind)
{
    if (sc->count == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 16;
        al_pii_match *v = realloc(sc->v, (size_t)cap * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        sc->v = v;
        sc->cap = cap;
    }
    sc->v[sc->count++] = (al_pii_match){t, start, end, kind};
    sc->last_end = end;
    return 0;
}

static unsigned at(const scan *sc, size_t i) { return i < sc->n ? sc->s[i] : 0; }

/* True if one of words occurs (case-insensitively) in [start - before, end + after). */
static bool has_context(const scan *sc, size_t start, size_t end, size_t before, size_t after,
                        const char *const *words)
{
    size_t lo = start > before ? start - before : 0;
    size_t hi = end + after < sc->n ? end + after : sc->n;
    for (const char *const *w = words; *w; w++) {
        size_t wl = strlen(*w);
        unsigned first = (unsigned char)**w; /* lower case: compared before the whole word */
        for (size_t i = lo; i + wl <= hi; i++)
            if ((sc->s[i] | 32u) == first && (i + wl <= start || i >= end) &&
                strncasecmp((const char *)sc->s + i, *w, wl) == 0)
                return true;
    }
    return false;
}

/* Reads up to max digits at *i into *value; returns how many were read. */
static int read_digits(const scan *sc, size_t *i, int max, long *value)
{
    int k = 0;
    long v = 0;
    while (k < max && is_digit(at(sc, *i))) {
        v = v * 10 + (at(sc, *i) - '0');
        (*i)++, k++;
    }
    *value = v;
    return k;
}

/* ---- validators ---- */

bool al_luhn_valid(const char *digits, size_t n)
{
    if (n < 2)
        return false;
    int sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned c = (unsigned char)digits[n - 1 - k];
        if (!is_digit(c))
            return false;
        int d = (int)(c - '0');
        if (k % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

static const char *card_issuer(const char *d, size_t n)
{
    int p2 = (d[0] - '0') * 10 + (d[1] - '0');
    int p3 = p2 * 10 + (d[2] - '0');
    int p4 = p3 * 10 + (d[3] - '0');
    if (d[0] == '4' && (n == 13 || n == 16 || n == 19))
        return "visa";
    if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n == 16)
        return "mastercard";
    if ((p2 == 34 || p2 == 37) && n == 15)
        return "amex";
    if ((p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) && n >= 16)
        return "discover";
    if (p4 >= 3528 && p4 <= 3589 && n >= 16)
        return "jcb";
    if (((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) && n >= 14)
        return "diners";
    if (p2 == 62 && n >= 16)
        return "unionpay";
    return NULL;
}

bool al_ssn_valid(int area, int group, int serial)
{
    return area > 0 && area < 900 && area != 666 && group > 0 && group <= 99 && serial > 0 &&
           serial <= 9999;
}

typedef struct iban_country {
    char cc[3];
    int len;
} iban_country;
static const iban_country iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18},
    {"DO", 28}, {"EE", 20}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22},
    {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23},
    {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21}, {"LT", 20},
    {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31},
    {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29},
    {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

static int iban_length(const char *cc)
{
    for (size_t i = 0; i < sizeof iban_lengths / sizeof *iban_lengths; i++)
        if ((cc[0] & ~32) == iban_lengths[i].cc[0] && (cc[1] & ~32) == iban_lengths[i].cc[1])
            return iban_lengths[i].len;
    return 0;
}

bool al_iban_valid(const char *s, size_t n)
{
    char c[40];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            continue;
        if (k == sizeof c || !is_alnum((unsigned char)s[i]))
            return false;
        c[k++] = s[i];
    }
    if (k < 15 || !is_alpha((unsigned char)c[0]) || !is_alpha((unsigned char)c[1]) ||
        !is_digit((unsigned char)c[2]) || !is_digit((unsigned char)c[3]) || (int)k != iban_length(c))
        return false;
    /* mod 97 of the number read from position 4 on, then the first four */
    int r = 0;
    for (size_t j = 0; j < k; j++) {
        unsigned ch = (unsigned char)c[(j + 4) % k];
        if (is_digit(ch))
            r = (r * 10 + (int)(ch - '0')) % 97;
        else
            r = (r * 100 + (int)((ch | 32) - 'a' + 10)) % 97;
    }
    return r == 1;
}

/* ---- numbers ---- */

static size_t try_ipv4(scan *sc, size_t i)
{
    if (i >= 2 && sc->s[i - 1] == '.' && is_digit(sc->s[i - 2]))
        return 0;
    size_t p = i;
    for (int o = 0; o < 4; o++) {
        if (o > 0) {
            if (at(sc, p) != '.')
                return 0;
            p++;
        }
        size_t q = p;
        long v;
        int k = read_digits(sc, &q, 3, &v);
        if (k == 0 || v > 255 || (k > 1 && sc->s[p] == '0'))
            return 0;
        p = q;
    }
    if (is_alnum(at(sc, p)) || (at(sc, p) == '.' && is_digit(at(sc, p + 1))))
        return 0;
    return add(sc, AL_PII_IPV4, i, p, "ipv4") ? (size_t)-1 : p;
}

static size_t try_card(scan *sc, size_t i)
{
    char d[20];
    size_t nd = 0, p = i;
    unsigned sep = 0;
    while (is_digit(at(sc, p))) {
        if (nd == 19)
            return 0;
        d[nd++] = (char)sc->s[p++];
        unsigned c = at(sc, p);
        if ((c == ' ' || c == '-') && is_digit(at(sc, p + 1)) && nd < 19) {
            if (sep && c != sep)
                break;
            sep = c;
            p++;
        }
    }
    if (nd < 13 || is_alnum(at(sc, p)))
        return 0;
    const char *issuer = card_issuer(d, nd);
    if (!issuer || !al_luhn_valid(d, nd))
        return 0;
    return add(sc, AL_PII_CARD, i, p, issuer) ? (size_t)-1 : p;
}

static size_t try_ssn(scan *sc, size_t i)
{
    static const char *const ctx[] = {"ssn", "social security", "ss#", NULL};
    size_t p = i;
    long area, group, serial;
    if (read_digits(sc, &p, 3, &area) != 3)
        return 0;
    unsigned sep = at(sc, p);
    if (sep == '-' || sep == ' ') {
        p++;
        if (read_digits(sc, &p, 2, &group) != 2 || at(sc, p) != sep)
            return 0;
        p++;
        if (read_digits(sc, &p, 4, &serial) != 4)
            return 0;
    } else {
        /* nine bare digits are an SSN only next to the words that say so */
        long rest;
        if (read_digits(sc, &p, 6, &rest) != 6 || !has_context(sc, i, p, 32, 0, ctx))
            return 0;
        group = rest / 10000;
        serial = rest % 10000;
    }
    if (is_alnum(at(sc, p)) || (at(sc, p) == '-' && is_digit(at(sc, p + 1))))
        return 0;
    if (!al_ssn_valid((int)area, (int)group, (int)serial))
        return 0;
    return add(sc, AL_PII_SSN, i, p, "ssn") ? (size_t)-1 : p;
}

static bool nanp_valid(long area, long exchange)
{
    return area >= 200 && area % 100 != 11 && exchange >= 200 && exchange % 100 != 11;
}

static size_t try_phone(scan *sc, size_t i)
{
    static const char *const ctx[] = {"phone", "call", "tel", "mobile", "cell", "fax", "sms", "whatsapp", NULL};
    size_t p = i;
    if (at(sc, p) == '+') {
        /* E.164: + then 8..15 digits, grouped by spaces, dashes, dots or parentheses */
        p++;
        if (!is_digit(at(sc, p)) || at(sc, p) == '0')
            return 0;
        int nd = 0;
        size_t end = p;
        while (p < sc->n && p - i < 24) {
            unsigned c = at(sc, p);
            if (is_digit(c)) {
                nd++;
                end = ++p;
            } else if ((c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') &&
                       (is_digit(at(sc, p + 1)) || at(sc, p + 1) == '(')) {
                p++;
            } else {
                break;
            }
        }
        if (nd < 8 || nd > 15 || is_alnum(at(sc, end)))
            return 0;
        return add(sc, AL_PII_PHONE, i, end, "e164") ? (size_t)-1 : end;
    }
    /* NANP: [1 ](415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671 */
    if (at(sc, p) == '1' && (at(sc, p + 1) == ' ' || at(sc, p + 1) == '-') &&
        (is_digit(at(sc, p + 2)) || at(sc, p + 2) == '('))
        p += 2;
    long area, exchange, line;
    unsigned sep;
    if (at(sc, p) == '(') {
        p++;
        if (read_digits(sc, &p, 3, &area) != 3 || at(sc, p) != ')')
            return 0;
        p++;
        if (at(sc, p) == ' ')
            p++;
        if (read_digits(sc, &p, 3, &exchange) != 3)
            return 0;
        sep = at(sc, p);
        if (sep != '-' && sep != ' ' && sep != '.')
            return 0;
        p++;
    } else {
        size_t q = p;
        int k = read_digits(sc, &q, 10, &area);
        if (k == 10 && !is_digit(at(sc, q))) {
            /* ten bare digits: only with a phone word nearby */
            if (!has_context(sc, i, q, 24, 0, ctx))
                return 0;
            exchange = area / 10000 % 1000;
            line = area % 10000;
            area /= 10000000;
            if (is_alnum(at(sc, q)) || !nanp_valid(area, exchange))
                return 0;
            return add(sc, AL_PII_PHONE, i, q, "nanp") ? (size_t)-1 : q;
        }
        if (k != 3)
            return 0;
        p = q;
        sep = at(sc, p);
        if (sep != '-' && sep != ' ' && sep != '.')
            return 0;
        p++;
        if (read_digits(sc, &p, 3, &exchange) != 3 || at(sc, p) != sep)
            return 0;
        p++;
    }
    if (read_digits(sc, &p, 4, &line) != 4 || is_alnum(at(sc, p)) ||
        ((at(sc, p) == '-' || at(sc, p) == '.') && is_digit(at(sc, p + 1))))
        return 0;
    if (!nanp_valid(area, exchange))
        return 0;
    return add(sc, AL_PII_PHONE, i, p, "nanp") ? (size_t)-1 : p;
}

/* ---- dates of birth ---- */

static const char *const dob_context[] = {"born", "birth", "dob", "d.o.b", "bday", "b-day", NULL};

static bool valid_date(long y, long m, long d)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap);
}

static int month_at(const scan *sc, size_t *p)
{
    static const char *const months[12] = {"january", "february", "march", "april", "may", "june", "july",
                                           "august", "september", "october", "november", "december"};
    if (*p + 3 > sc->n)
        return 0;
    const unsigned char *w = sc->s + *p;
    unsigned a = w[0] | 32, b = w[1] | 32, c = w[2] | 32;
    if (a != 'j' && a != 'f' && a != 'm' && a != 'a' && a != 's' && a != 'o' && a != 'n' && a != 'd')
        return 0;
    for (int m = 0; m < 12; m++) {
        if (a != (unsigned char)months[m][0] || b != (unsigned char)months[m][1] || c != (unsigned char)months[m][2])
            continue;
        size_t full = strlen(months[m]), len = 3;
        if (*p + full <= sc->n && strncasecmp((const char *)w, months[m], full) == 0)
            len = full;
        if (is_alpha(at(sc, *p + len)))
            return 0;
        *p += len;
        if (len == 3 && at(sc, *p) == '.')
            (*p)++;
        return m + 1;
    }
    return 0;
}

static void skip_ordinal(const scan *sc, size_t *p)
{
    static const char *const suf[] = {"st", "nd", "rd", "th"};
    for (int k = 0; k < 4; k++)
        if (*p + 2 <= sc->n && strncasecmp((const char *)sc->s + *p, suf[k], 2) == 0 &&
            !is_alpha(at(sc, *p + 2))) {
            *p += 2;
            return;
        }
}

/* ", 1984" or " 1984" at *p */
static bool read_year(const scan *sc, size_t *p, long *year)
{
    if (at(sc, *p) == ',')
        (*p)++;
    if (at(sc, *p) != ' ')
        return false;
    (*p)++;
    return read_digits(sc, p, 4, year) == 4;
}

static size_t finish_date(scan *sc, size_t i, size_t p, long y, long m, long d)
{
    if (is_alnum(at(sc, p)) || !valid_date(y, m, d))
        return 0;
    if (!has_context(sc, i, p, 40, 24, dob_context))
        return 0;
    return add(sc, AL_PII_DATE_OF_BIRTH, i, p, "date") ? (size_t)-1 : p;
}

/* "1984-03-05", "05/03/1984", "3/5/1984", "05.03.1984", "5 March 1984", "5th of March, 1984" */
static size_t try_date_numeric(scan *sc, size_t i)
{
    size_t p = i;
    long a, b, c;
    int ka = read_digits(sc, &p, 4, &a);
    unsigned sep = at(sc, p);
    if (ka == 4 && (sep == '-' || sep == '/' || sep == '.')) {
        p++;
        if (read_digits(sc, &p, 2, &b) == 0 || at(sc, p) != sep)
            return 0;
        p++;
        if (read_digits(sc, &p, 2, &c) == 0)
            return 0;
        return finish_date(sc, i, p, a, b, c);
    }
    if (ka > 2)
        return 0;
    if (sep == '-' || sep == '/' || sep == '.') {
        p++;
        if (read_digits(sc, &p, 2, &b) == 0 || at(sc, p) != sep)
            return 0;
        p++;
        if (read_digits(sc, &p, 4, &c) != 4)
            return 0;
        /* day-month or month-day: either reading that is a real date */
        size_t r = valid_date(c, b, a) ? finish_date(sc, i, p, c, b, a) : 0;
        return r ? r : finish_date(sc, i, p, c, a, b);
    }
    skip_ordinal(sc, &p);
    if (at(sc, p) != ' ')
        return 0;
    p++;
    if (p + 3 <= sc->n && strncasecmp((const char *)sc->s + p, "of ", 3) == 0)
        p += 3;
    int m = month_at(sc, &p);
    if (!m || !read_year(sc, &p, &c))
        return 0;
    return finish_date(sc, i, p, c, m, a);
}

/* "March 5, 1984", "Mar. 5th 1984" */
static size_t try_date_month(scan *sc, size_t i)
{
    /* a month name is a word of at most nine letters followed by " 5" or ". 5" */
    size_t e = i;
    while (e - i < 10 && is_alpha(at(sc, e)))
        e++;
    if (at(sc, e) == '.')
        e++;
    if (at(sc, e) != ' ' || !is_digit(at(sc, e + 1)))
        return 0;
    size_t p = i;
    int m = month_at(sc, &p);
    if (!m || at(sc, p) != ' ')
        return 0;
    p++;
    long d, y;
    if (read_digits(sc, &p, 2, &d) == 0)
        return 0;
    skip_ordinal(sc, &p);
    if (!read_year(sc, &p, &y))
        return 0;
    return finish_date(sc, i, p, y, m, d);
}

/* ---- words ---- */

static size_t try_iban(scan *sc, size_t i)
{
    if (!is_upper(at(sc, i)) || !is_upper(at(sc, i + 1)) || !is_digit(at(sc, i + 2)) ||
        !is_digit(at(sc, i + 3)))
        return 0;
    int want = iban_length((const char *)sc->s + i);
    if (!want)
        return 0;
    size_t p = i;
    int k = 0;
    while (k < want) {
        unsigned c = at(sc, p);
        if (is_digit(c) || is_upper(c)) {
            k++, p++;
        } else if (c == ' ' && k % 4 == 0 && (is_digit(at(sc, p + 1)) || is_upper(at(sc, p + 1)))) {
            p++;
        } else {
            return 0;
        }
    }
    if (is_alnum(at(sc, p)) || !al_iban_valid((const char *)sc->s + i, p - i))
        return 0;
    return add(sc, AL_PII_IBAN, i, p, "iban") ? (size_t)-1 : p;
}

/* Characters of a token: letters, digits and the given extras. */
static size_t token_end(const scan *sc, size_t p, const char *extra)
{
    while (p < sc->n && (is_alnum(sc->s[p]) || in_set(sc->s[p], extra)))
        p++;
    return p;
}

static bool starts(const scan *sc, size_t i, const char *prefix)
{
    size_t k = strlen(prefix);
    return i + k <= sc->n && memcmp(sc->s + i, prefix, k) == 0;
}

/* Random-looking: enough distinct characters that it is not a placeholder like "xxxx". */
static bool varied(const unsigned char *s, size_t n)
{
    bool seen[128] = {0};
    int distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 128 && !seen[s[i]])
            seen[s[i]] = true, distinct++;
    return distinct >= 8;
}

static bool jwt_header_ok(const unsigned char *s, size_t n)
{
    al_buf b = {0};
    bool ok = al_decode(AL_CODEC_BASE64, (const char *)s, n, &b) == 0 && b.len > 2 && b.data[0] == '{' &&
              strstr(b.data, "\"alg\"") != NULL;
    al_buf_free(&b);
    return ok;
}

/* The first two bytes of every secret format below: most words fail here. */
static bool may_start_secret(unsigned first, unsigned second)
{
    switch (first) {
    case 'A': return in_set(second, "KSGIRNWw");
    case 'a': return (second | 32) == 'w';
    case 'g': return second == 'h' || second == 'i';
    case 'x': return second == 'o';
    case 's': case 'r': return second == 'k';
    case 'e': return second == 'y';
    case '-': return second == '-';
    }
    return false;
}

static size_t try_secret(scan *sc, size_t i)
{
    const unsigned char *s = sc->s;
    unsigned first = s[i]; /* each secret is tried only where its first byte is */
    if (!may_start_secret(first, at(sc, i + 1)))
        return 0;
    static const char *const aws[] = {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"};
    for (size_t k = 0; first == 'A' && k < sizeof aws / sizeof *aws; k++)
        if (starts(sc, i, aws[k])) {
            size_t p = i + 4;
            while (p < i + 20 && (is_upper(at(sc, p)) || is_digit(at(sc, p))))
                p++;
            if (p == i + 20 && !is_alnum(at(sc, p)))
                return add(sc, AL_PII_SECRET, i, p, "aws_access_key") ? (size_t)-1 : p;
            return 0;
        }
    if ((first | 32) == 'a' && i + 21 <= sc->n && strncasecmp((const char *)s + i, "aws_secret_access_key", 21) == 0) {
        size_t p = i + 21;
        while (p < sc->n && p < i + 27 && in_set(s[p], " \t\"'=:"))
            p++;
        size_t e = token_end(sc, p, "/+");
        if (e - p == 40 && varied(s + p, 40))
            return add(sc, AL_PII_SECRET, p, e, "aws_secret_key") ? (size_t)-1 : e;
        return 0;
    }
    if (first == 'g' && starts(sc, i, "gh") && in_set(at(sc, i + 2), "pousr") && at(sc, i + 3) == '_') {
        size_t e = token_end(sc, i + 4, "");
        if (e - i - 4 == 36 && varied(s + i + 4, 36))
            return add(sc, AL_PII_SECRET, i, e, "github_token") ? (size_t)-1 : e;
        return 0;
    }
    if (first == 'g' && starts(sc, i, "github_pat_")) {
        size_t e = token_end(sc, i + 11, "_");
        if (e - i - 11 >= 70 && varied(s + i + 11, e - i - 11))
            return add(sc, AL_PII_SECRET, i, e, "github_token") ? (size_t)-1 : e;
        return 0;
    }
    if (first == 'x' && starts(sc, i, "xox") && in_set(at(sc, i + 3), "abposr") && at(sc, i + 4) == '-') {
        size_t e = token_end(sc, i + 5, "-");
        if (e - i - 5 >= 10 && varied(s + i + 5, e - i - 5))
            return add(sc, AL_PII_SECRET, i, e, "slack_token") ? (size_t)-1 : e;
        return 0;
    }
    if (first == 'A' && starts(sc, i, "AIza")) {
        size_t e = token_end(sc, i + 4, "_-");
        if (e - i == 39 && varied(s + i, 39))
            return add(sc, AL_PII_SECRET, i, e, "google_api_key") ? (size_t)-1 : e;
        return 0;
    }
    if ((first == 's' || first == 'r') && (starts(sc, i, "sk_live_") || starts(sc, i, "rk_live_"))) {
        size_t e = token_end(sc, i + 8, "");
        if (e - i - 8 >= 24 && varied(s + i + 8, e - i - 8))
            return add(sc, AL_PII_SECRET, i, e, "stripe_key") ? (size_t)-1 : e;
        return 0;
    }
    if (first == 's' && starts(sc, i, "sk-")) {
        size_t e = token_end(sc, i + 3, "_-");
        if (e - i - 3 >= 32 && varied(s + i + 3, e - i - 3))
            return add(sc, AL_PII_SECRET, i, e, "api_key") ? (size_t)-1 : e;
        return 0;
    }
    if (first == 'e' && starts(sc, i, "eyJ")) {
        size_t h = token_end(sc, i, "_-");
        if (at(sc, h) != '.' || !jwt_header_ok(s + i, h - i))
            return 0;
        size_t pl = token_end(sc, h + 1, "_-");
        if (pl == h + 1 || at(sc, pl) != '.')
            return 0;
        size_t e = token_end(sc, pl + 1, "_-");
        return add(sc, AL_PII_SECRET, i, e, "jwt") ? (size_t)-1 : e;
    }
    if (first == '-' && starts(sc, i, "-----BEGIN ")) {
        size_t p = i + 11, lim = i + 80 < sc->n ? i + 80 : sc->n;
        const char *hdr_end = memmem(s + p, lim - p, "-----", 5);
        if (!hdr_end || !memmem(s + p, (size_t)((const unsigned char *)hdr_end - (s + p)), "PRIVATE KEY", 11))
            return 0;
        size_t body = (size_t)((const unsigned char *)hdr_end - s) + 5;
        const unsigned char *end = memmem(s + body, sc->n - body, "-----END ", 9);
        size_t e = sc->n; /* a key cut off mid-block is still a key */
        if (end) {
            const unsigned char *close = memmem(end + 9, (size_t)(s + sc->n - end - 9), "-----", 5);
            if (close)
                e = (size_t)(close - s) + 5;
        }
        return add(sc, AL_PII_SECRET, i, e, "private_key") ? (size_t)-1 : e;
    }
    return 0;
}

static size_t try_ipv6(scan *sc, size_t i)
{
    size_t p = i;
    int colons = 0;
    while (p < sc->n && p - i < 46 && (is_hex(sc->s[p]) || sc->s[p] == ':' || sc->s[p] == '.')) {
        colons += sc->s[p] == ':';
        p++;
    }
    while (p > i + 1 && (sc->s[p - 1] == '.' || (sc->s[p - 1] == ':' && sc->s[p - 2] != ':')))
        p--;
    if (colons < 2 || p - i < 3 || is_alnum(at(sc, p)))
        return 0;
    char buf[48];
    memcpy(buf, sc->s + i, p - i);
    buf[p - i] = 0;
    unsigned char addr[16];
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return 0;
    return add(sc, AL_PII_IPV6, i, p, "ipv6") ? (size_t)-1 : p;
}

/* scheme://user:password@host -> the user:password part */
static size_t try_url_credentials(scan *sc, size_t colon)
{
    size_t b = colon;
    while (b > sc->last_end && (is_alnum(sc->s[b - 1]) || in_set(sc->s[b - 1], "+.-")))
        b--;
    if (b == colon || !is_alpha(sc->s[b]))
        return 0;
    size_t u = colon + 3, p = u, pw = 0;
    while (p < sc->n && p - u < 256 && sc->s[p] && !in_set(sc->s[p], " \t\r\n/?#@\"'<>")) {
        if (sc->s[p] == ':' && !pw)
            pw = p;
        p++;
    }
    if (at(sc, p) != '@' || !pw || pw == u || pw + 1 == p || !is_alnum(at(sc, p + 1)))
        return 0;
    return add(sc, AL_PII_URL_CREDENTIALS, u, p, "url_credentials") ? (size_t)-1 : p;
}

/* local@domain.tld, RFC 5321 lengths, no empty or dashed-edge labels */
static size_t try_email(scan *sc, size_t a)
{
    static const char local_extra[] = "._%+-";
    size_t b = a;
    while (b > sc->last_end && (is_alnum(sc->s[b - 1]) || in_set(sc->s[b - 1], local_extra)))
        b--;
    while (b < a && sc->s[b] == '.')
        b++;
    if (b == a || a - b > 64 || sc->s[a - 1] == '.' || memmem(sc->s + b, a - b, "..", 2))
        return 0;
    size_t p = a + 1;
    while (p < sc->n && (is_alnum(sc->s[p]) || sc->s[p] == '.' || sc->s[p] == '-'))
        p++;
    while (p > a + 1 && (sc->s[p - 1] == '.' || sc->s[p - 1] == '-'))
        p--;
    if (p - a - 1 > 253 || at(sc, p) == '@')
        return 0;
    int labels = 0;
    size_t ls = a + 1, tld_alpha = 0;
    for (size_t q = a + 1; q <= p; q++) {
        if (q < p && sc->s[q] != '.')
            continue;
        size_t len = q - ls;
        if (len == 0 || len > 63 || sc->s[ls] == '-' || sc->s[q - 1] == '-')
            return 0;
        labels++;
        tld_alpha = len;
        for (size_t k = ls; k < q; k++)
            if (!is_alpha(sc->s[k]))
                tld_alpha = 0;
        ls = q + 1;
    }
    if (labels < 2 || tld_alpha < 2)
        return 0;
    return add(sc, AL_PII_EMAIL, b, p, "email") ? (size_t)-1 : p;
}

/* At the start of a number: each type in turn; on failure skip the first digit group. */
static size_t try_number(scan *sc, size_t i)
{
    size_t r = 0;
    const bool *on = sc->on;
    if (on[AL_PII_IPV4] && is_digit(at(sc, i)) && (r = try_ipv4(sc, i)))
        return r;
    if (on[AL_PII_DATE_OF_BIRTH] && is_digit(at(sc, i)) && (r = try_date_numeric(sc, i)))
        return r;
    if (on[AL_PII_SSN] && is_digit(at(sc, i)) && (r = try_ssn(sc, i)))
        return r;
    if (on[AL_PII_CARD] && is_digit(at(sc, i)) && (r = try_card(sc, i)))
        return r;
    if (on[AL_PII_PHONE] && (r = try_phone(sc, i)))
        return r;
    size_t p = i + 1;
    while (is_digit(at(sc, p)))
        p++;
    return p;
}

/* Where a candidate may start: '@', ':', and the first byte of a word that can begin one
 * (a letter, digit, '+', '(' or '-' not preceded by a letter or digit).  Words of
 * letters are the bulk of prose and rarely begin anything, so one counts only when the
 * bytes after it could make what its validators look for: an IPv6 address (a ':' within
 * six bytes), an IBAN (two capitals, two digits), a secret (eight or more token bytes)
 * or a month before a day ("March 5": a digit 4 to 11 bytes on).  The classes come 64
 * bytes at a time, with the next block's for looking ahead. */
static uint64_t candidates(const guard_block *k, const guard_block *next, uint64_t *carry, bool every_start)
{
    uint64_t alnum = k->alpha | k->digit, alnum_next = next->alpha | next->digit;
    uint64_t starts = (alnum | k->plus | k->minus | k->lparen) & ~(alnum << 1 | *carry);
    *carry = alnum >> 63;
    if (every_start)
        return k->at | k->colon | starts;
    uint64_t colon_soon = 0, digit_later = 0;
    for (int d = 1; d < 12; d++) {
        if (d < 6)
            colon_soon |= guard_ahead(k->colon, next->colon, d);
        if (d >= 4)
            digit_later |= guard_ahead(k->digit, next->digit, d);
    }
    uint64_t long_token = guard_run_at_least(alnum | k->under | k->minus, alnum_next | next->under | next->minus, 3);
    uint64_t iban = k->upper & guard_ahead(k->upper, next->upper, 1) & guard_ahead(k->digit, next->digit, 2) &
                    guard_ahead(k->digit, next->digit, 3);
    uint64_t worth = (k->hexa & colon_soon) | iban | long_token | digit_later;
    return k->at | k->colon | (starts & ~k->alpha) | (starts & k->alpha & worth);
}

static int candidate_bits(const unsigned char *s, size_t n, bool every_start, guard_bits *b)
{
    if (!(b->v = malloc(guard_bits_words(n) * sizeof *b->v)))
        return al_fail("out of memory");
    b->n = n;
    guard_blocks it;
    uint64_t carry = 0; /* was the last byte of the previous block a letter or digit? */
    size_t w = 0;
    for (guard_blocks_start(&it, s, n); guard_blocks_next(&it); w++)
        b->v[w] = candidates(&it.cur, &it.next, &carry, every_start);
    b->v[w] = 0;
    return 0;
}

/* An IPv6 address starting at a hex digit has a ':' within its first six bytes. */
static bool colon_within_six(const scan *sc, size_t i)
{
    for (size_t k = i + 1; k < i + 6 && k < sc->n; k++)
        if (sc->s[k] == ':')
            return true;
    return false;
}

static int pii_scan(const char *text, size_t n, const bool enabled[AL_PII_COUNT], bool every_start,
                    al_pii_match **out, int *n_out)
{
    bool all[AL_PII_COUNT];
    for (int t = 0; t < AL_PII_COUNT; t++)
        all[t] = enabled ? enabled[t] : true;
    scan sc = {(const unsigned char *)text, n, all, 0, NULL, 0, 0};
    const unsigned char *s = sc.s;
    bool ip6 = all[AL_PII_IPV6], word_types = all[AL_PII_IBAN] || all[AL_PII_SECRET] || all[AL_PII_DATE_OF_BIRTH];
    guard_bits cand = {NULL, 0};
    if (candidate_bits(s, n, every_start, &cand))
        return -1;
    for (size_t i = 0; (i = guard_bits_next(&cand, i, true)) < n;) {
        unsigned c = s[i];
        size_t r = 0;
        if (c == '@') {
            if (all[AL_PII_EMAIL])
                r = try_email(&sc, i);
        } else if (c == ':') {
            if (all[AL_PII_URL_CREDENTIALS] && at(&sc, i + 1) == '/' && at(&sc, i + 2) == '/')
                r = try_url_credentials(&sc, i);
        } else {
            if (ip6 && is_hex(c) && i + 2 < n && colon_within_six(&sc, i))
                r = try_ipv6(&sc, i);
            if (!r && (is_digit(c) || c == '+' || c == '('))
                r = try_number(&sc, i);
            else if (!r && word_types && (is_alpha(c) || c == '-')) {
                if (all[AL_PII_IBAN])
                    r = try_iban(&sc, i);
                if (!r && all[AL_PII_SECRET])
                    r = try_secret(&sc, i);
                if (!r && all[AL_PII_DATE_OF_BIRTH] && is_alpha(c))
                    r = try_date_month(&sc, i);
            }
        }
        if (r == (size_t)-1) {
            free(cand.v);
            free(sc.v);
            return -1;
        }
        i = r > i ? r : i + 1;
    }
    free(cand.v);
    *out = sc.v;
    *n_out = sc.count;
    return 0;
}

int al_pii_scan(const char *text, size_t n, const bool enabled[AL_PII_COUNT], al_pii_match **out, int *n_out)
{
    return pii_scan(text, n, enabled, false, out, n_out);
}

int guard_pii_scan_reference(const char *text, size_t n, const bool enabled[AL_PII_COUNT], al_pii_match **out,
                             int *n_out)
{
    return pii_scan(text, n, enabled, true, out, n_out);
}
