/* The byte classes one byte at a time: what guard_classify does without vector
 * instructions, and the reference tests/test_guard_scan.c holds the vector versions to. */
#include "bytemask.h"

void guard_classify_scalar(const unsigned char *s, size_t len, guard_block *b)
{
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < len && i < 64; i++) {
        unsigned c = s[i];
        uint64_t bit = 1ull << i;
        b->alpha |= (c | 32) - 'a' < 26 ? bit : 0;
        b->upper |= c - 'A' < 26 ? bit : 0;
        b->digit |= c - '0' < 10 ? bit : 0;
        b->hexa |= (c | 32) - 'a' < 6 ? bit : 0;
        b->space |= c == ' ' ? bit : 0;
        b->at |= c == '@' ? bit : 0;
        b->colon |= c == ':' ? bit : 0;
        b->dollar |= c == '$' ? bit : 0;
        b->plus |= c == '+' ? bit : 0;
        b->minus |= c == '-' ? bit : 0;
        b->slash |= c == '/' ? bit : 0;
        b->under |= c == '_' ? bit : 0;
        b->equals |= c == '=' ? bit : 0;
        b->lparen |= c == '(' ? bit : 0;
    }
}
