/* Data parallelism over MPI ranks (OpenMPI).  A process started by mpirun is one rank of
 * the job; any other process is the only rank, and no MPI call is made (MPI's own start-up
 * would cost every command half a second).  Collectives report failures as align errors;
 * a rank that dies takes the job down (mpirun's default), which the trainers' atomic
 * checkpoints survive.  docs/distributed.md. */
#ifndef ALIGN_DIST_H
#define ALIGN_DIST_H

#include <stdbool.h>
#include <stddef.h>

/* Joins the job when launched by mpirun (its environment says so); idempotent. */
int al_dist_init(int *argc, char ***argv);
void al_dist_finalize(void);
int al_dist_rank(void);
int al_dist_size(void);
static inline bool al_dist_is_root(void) { return al_dist_rank() == 0; }

/* Sums x[0..n) over the ranks, the result on every rank.  The sum is taken in rank order,
 * ((x0 + x1) + x2) + ..., whatever the network's shape, so a run is repeatable.  (It is
 * not bit-identical to one rank accumulating every micro-batch: there each backward adds
 * into the gradient inside its matrix products, which rounds differently.) */
int al_dist_sum_floats(float *x, size_t n);
int al_dist_sum_doubles(double *x, size_t n);
/* root's bytes to every rank */
int al_dist_bcast(void *buf, size_t bytes, int root);
int al_dist_barrier(void);
/* Ends every rank of the job (after printing why on this one). */
void al_dist_abort(const char *why);
/* Bytes this rank has sent to collectives since the start (the figure docs report). */
size_t al_dist_bytes_reduced(void);
/* Seconds this rank has spent in the sums (waiting for slower ranks included). */
double al_dist_seconds_reduced(void);

#endif
