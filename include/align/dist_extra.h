/* What the data-parallel trainers need beyond align/dist.h: the split of a step's
 * micro-batches, stopping the whole job on one rank's error, and a check that every rank
 * starts from the same state.  docs/distributed.md. */
#ifndef ALIGN_DIST_EXTRA_H
#define ALIGN_DIST_EXTRA_H

#include <stdbool.h>
#include <stddef.h>

/* True when micro-batch k of a step is this rank's: k % size == rank. */
bool al_dist_owns(int k);

/* Under mpirun, a rank that fails mid-run must end the job: the others would wait for it
 * in the next sum forever (and MPI_Finalize waits for them).  With rc != 0 and more than
 * one rank, prints "align: rank R of N: <what>: <error>" and aborts the job; otherwise
 * returns rc. */
int al_dist_stop_on_error(int rc, const char *what);

/* Fails (on the ranks that differ) unless this rank's n bytes at p hash as rank 0's do.
 * what names the data in the error ("model weights", ...). */
int al_dist_check_same(const void *p, size_t n, const char *what);

#endif
