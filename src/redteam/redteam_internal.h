/* Shared inside src/redteam. */
#ifndef ALIGN_REDTEAM_INTERNAL_H
#define ALIGN_REDTEAM_INTERNAL_H

#include "align/redteam.h"

/* The invented cipher's table for seed, as the prompt shows it ("a=q b=w ..."). */
int redteam_cipher_table(uint64_t seed, al_buf *out);

#endif
