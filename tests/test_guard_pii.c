/* The PII scanner: each type is found inside a sentence with the right span, and its
 * look-alikes that fail validation (checksum, range, calendar, context) are not; the
 * redaction modes; SHA-256 and HMAC against their published vectors. */
#include "align/guard.h"
#include "test.h"

/* Scans text with every type on; returns the match of type t that covers want, if any. */
static bool found(const char *text, al_pii_type t, const char *want)
{
    al_pii_match *m = NULL;
    int n = 0;
    if (al_pii_scan(text, strlen(text), NULL, &m, &n) != 0)
        return false;
    const char *at = strstr(text, want);
    bool ok = false;
    for (int i = 0; i < n; i++)
        if (m[i].type == t && at && m[i].start == (size_t)(at - text) && m[i].end == m[i].start + strlen(want))
            ok = true;
    free(m);
    return ok;
}

/* True if nothing at all is found in text. */
static bool clean(const char *text)
{
    al_pii_match *m = NULL;
    int n = -1;
    int rc = al_pii_scan(text, strlen(text), NULL, &m, &n);
    if (rc == 0 && n > 0)
        fprintf(stderr, "  found %s [%zu,%zu) in: %s\n", al_pii_name(m[0].type), m[0].start, m[0].end, text);
    free(m);
    return rc == 0 && n == 0;
}

#define FOUND(text, type, want) CHECKF(found(text, type, want), "%s not found in: %s", want, text)
#define CLEAN(text) CHECKF(clean(text), "false positive in: %s", text)

static void test_email(void)
{
    FOUND("Write to jane.doe+news@mail.example.co.uk today.", AL_PII_EMAIL, "jane.doe+news@mail.example.co.uk");
    FOUND("contact: bob@example.com.", AL_PII_EMAIL, "bob@example.com");
    CLEAN("jane..doe@example.com is malformed");
    CLEAN("root@localhost has no domain");
    CLEAN("user@-example.com starts with a dash");
    CLEAN("an @ sign alone, @example.com, and x@y.c1");
}

static void test_phone(void)
{
    FOUND("Call me at (415) 555-2671 tomorrow.", AL_PII_PHONE, "(415) 555-2671");
    FOUND("Office: 415-555-2671.", AL_PII_PHONE, "415-555-2671");
    FOUND("London office +44 20 7946 0958, ask for Sam", AL_PII_PHONE, "+44 20 7946 0958");
    FOUND("my phone is 4155552671", AL_PII_PHONE, "4155552671");
    CLEAN("order 123-456-7890 shipped");   /* area code cannot start with 1 */
    CLEAN("ref 415-055-2671");             /* nor the exchange with 0 */
    CLEAN("the total was 4155552671 units"); /* bare digits without a phone word */
    CLEAN("+0 123 456 789 is not E.164");
}

static void test_card(void)
{
    FOUND("Card 4111 1111 1111 1111 exp 12/29", AL_PII_CARD, "4111 1111 1111 1111");
    FOUND("mc=5555555555554444;", AL_PII_CARD, "5555555555554444");
    FOUND("Amex 3782-822463-10005 on file", AL_PII_CARD, "3782-822463-10005");
    FOUND("Discover 6011111111111117", AL_PII_CARD, "6011111111111117");
    CLEAN("Card 4111 1111 1111 1112 exp 12/29"); /* Luhn fails */
    CLEAN("id 0000 0000 0000 0000");             /* Luhn passes, no issuer */
    CLEAN("tracking 1234567812345678");
    CHECK(al_luhn_valid("79927398713", 11));
    CHECK(!al_luhn_valid("79927398710", 11));
}

static void test_iban(void)
{
    FOUND("Pay to GB82 WEST 1234 5698 7654 32 by Friday", AL_PII_IBAN, "GB82 WEST 1234 5698 7654 32");
    FOUND("IBAN: DE89370400440532013000.", AL_PII_IBAN, "DE89370400440532013000");
    FOUND("FR14 2004 1010 0505 0001 3M02 606", AL_PII_IBAN, "FR14 2004 1010 0505 0001 3M02 606");
    CLEAN("Pay to GB82 WEST 1234 5698 7654 33 by Friday"); /* mod 97 fails */
    CLEAN("DE89 3704 0044 0532 0130");                      /* too short for DE */
    CHECK(al_iban_valid("GB82WEST12345698765432", 22));
    CHECK(!al_iban_valid("GB82WEST12345698765423", 22));
    CHECK(!al_iban_valid("ZZ82WEST12345698765432", 22)); /* unknown country */
}

static void test_ssn(void)
{
    FOUND("SSN 123-45-6789 on the form", AL_PII_SSN, "123-45-6789");
    FOUND("her social security number is 234567890.", AL_PII_SSN, "234567890");
    CLEAN("000-12-3456");
    CLEAN("666-12-3456");
    CLEAN("900-12-3456");
    CLEAN("123-00-4567");
    CLEAN("123-45-0000");
    CLEAN("part number 234567890"); /* nine bare digits without the words */
    CHECK(al_ssn_valid(899, 1, 1));
    CHECK(!al_ssn_valid(666, 1, 1));
}

static void test_ip(void)
{
    FOUND("server at 192.168.1.20, port 22", AL_PII_IPV4, "192.168.1.20");
    FOUND("host 10.0.0.1.", AL_PII_IPV4, "10.0.0.1");
    CLEAN("256.1.1.1 has a bad octet");
    CLEAN("1.2.3 is too short");
    CLEAN("01.2.3.4 has a leading zero");
    CLEAN("1.2.3.4.5 is not an address");
    FOUND("v6 2001:db8::8a2e:370:7334 here", AL_PII_IPV6, "2001:db8::8a2e:370:7334");
    FOUND("link-local fe80::1 and", AL_PII_IPV6, "fe80::1");
    CLEAN("bad 2001:db8:::1 address");
    CLEAN("at 12:30:45 sharp");
    CLEAN("mac 00:1A:2B:3C:4D:5E");
}

static void test_url_and_secrets(void)
{
    FOUND("see https://admin:hunter2@db.example.com/x", AL_PII_URL_CREDENTIALS, "admin:hunter2");
    CLEAN("see https://example.com/@x and https://example.com:8080/a:b@");
    /* a user name without a password is not a credential (it reads as an address) */
    CHECK(!found("https://user@host.example.com/", AL_PII_URL_CREDENTIALS, "user"));
    FOUND("key AKIAIOSFODNN7EXAMPLE in config", AL_PII_SECRET, "AKIAIOSFODNN7EXAMPLE");
    CLEAN("key AKIAIOSFODNN7EXAMPL in config"); /* 19 characters */
    FOUND("token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 pushed", AL_PII_SECRET,
          "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    CLEAN("token ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pushed"); /* a placeholder */
    const char *jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    char buf[400];
    snprintf(buf, sizeof buf, "Authorization: Bearer %s\n", jwt);
    FOUND(buf, AL_PII_SECRET, jwt);
    CLEAN("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.abc"); /* header without "alg" */
    const char *pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    snprintf(buf, sizeof buf, "here:\n%s\nthanks", pem);
    FOUND(buf, AL_PII_SECRET, pem);
    CLEAN("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
    FOUND("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AL_PII_SECRET,
          "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
}

static void test_dob(void)
{
    FOUND("She was born on 1984-03-05 in Leeds.", AL_PII_DATE_OF_BIRTH, "1984-03-05");
    FOUND("Date of birth: March 5, 1984", AL_PII_DATE_OF_BIRTH, "March 5, 1984");
    FOUND("DOB 31/12/1990", AL_PII_DATE_OF_BIRTH, "31/12/1990");
    FOUND("born 5th of March 1984", AL_PII_DATE_OF_BIRTH, "5th of March 1984");
    FOUND("2000-02-29 is my birthday", AL_PII_DATE_OF_BIRTH, "2000-02-29");
    CLEAN("She was born on 1984-02-30 in Leeds."); /* no such day */
    CLEAN("born 1900-02-29");                      /* 1900 was not a leap year */
    CLEAN("The meeting is on 1984-03-05.");        /* no birth word nearby */
}

static void test_types_and_limits(void)
{
    bool only_email[AL_PII_COUNT] = {0};
    only_email[AL_PII_EMAIL] = true;
    const char *t = "a@example.com 4111 1111 1111 1111";
    al_pii_match *m = NULL;
    int n = 0;
    CHECK_OK(al_pii_scan(t, strlen(t), only_email, &m, &n));
    CHECK(n == 1 && m[0].type == AL_PII_EMAIL);
    free(m);
    al_pii_type ty;
    CHECK(al_pii_parse("iban", &ty) == 0 && ty == AL_PII_IBAN);
    CHECK(al_pii_parse("passport", &ty) != 0);
    /* NUL bytes and invalid UTF-8 are just bytes */
    const char odd[] = "\xff\x00 bob@example.com \xc3";
    CHECK_OK(al_pii_scan(odd, sizeof odd - 1, NULL, &m, &n));
    CHECK(n == 1 && m[0].start == 3);
    free(m);
}

static void hex(const uint8_t *d, int n, char *out)
{
    for (int i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_hash_and_redact(void)
{
    uint8_t d[32];
    char h[65];
    al_sha256("abc", 3, d);
    hex(d, 32, h);
    CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    al_sha256(two, strlen(two), d);
    hex(d, 32, h);
    CHECK(strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    /* RFC 4231 test case 2 */
    const char *msg = "what do ya want for nothing?";
    al_hmac_sha256("Jefe", 4, msg, strlen(msg), d);
    hex(d, 32, h);
    CHECK(strcmp(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);

    const char *t = "mail bob@example.com now";
    al_redact_span sp = {5, 20, "EMAIL"};
    al_buf b = {0};
    CHECK_OK(al_redact(t, strlen(t), &sp, 1, AL_REDACT_TAG, NULL, &b));
    CHECK(b.data && strcmp(b.data, "mail [EMAIL] now") == 0);
    b.len = 0;
    CHECK_OK(al_redact(t, strlen(t), &sp, 1, AL_REDACT_MASK, NULL, &b));
    CHECK(b.data && strcmp(b.data, "mail ***@*******.*** now") == 0);
    b.len = 0;
    CHECK_OK(al_redact(t, strlen(t), &sp, 1, AL_REDACT_HASH, "pepper", &b));
    al_hmac_sha256("pepper", 6, "bob@example.com", 15, d);
    hex(d, 8, h);
    char want[100];
    snprintf(want, sizeof want, "mail [EMAIL:%s] now", h);
    CHECK(b.data && strcmp(b.data, want) == 0);
    /* another salt, another hash */
    al_buf c = {0};
    CHECK_OK(al_redact(t, strlen(t), &sp, 1, AL_REDACT_HASH, "salt", &c));
    CHECK(c.data && strcmp(b.data, c.data) != 0);
    al_redact_span bad = {10, 5, "X"};
    CHECK(al_redact(t, strlen(t), &bad, 1, AL_REDACT_TAG, NULL, &c) != 0);
    al_buf_free(&b);
    al_buf_free(&c);
}

int main(void)
{
    test_email();
    test_phone();
    test_card();
    test_iban();
    test_ssn();
    test_ip();
    test_url_and_secrets();
    test_dob();
    test_types_and_limits();
    test_hash_and_redact();
    return test_report();
}
