/* MPI for data parallelism (include/align/dist.h).  Sums are taken left to right in rank
 * order: float addition is not associative, and this order is what makes N ranks
 * repeatable and equal to one rank's sequential accumulation. */
#include "align/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "align/core.h"

static int dist_rank = 0, dist_size = 1;
static bool dist_on = false;
static size_t bytes_reduced;
static double seconds_reduced;

static void sum_f32(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const float *a = in;
    float *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] = a[i] + b[i]; /* a: the lower ranks' partial sum */
}

static void sum_f64(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    const double *a = in;
    double *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] = a[i] + b[i];
}

/* mpirun (OpenMPI's, or a PMIx launcher) leaves these in each rank's environment. */
static bool launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static int mpi_fail(int code, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(code, msg, &n);
    return al_fail("rank %d of %d: %s: %s", dist_rank, dist_size, what, msg);
}

int al_dist_init(int *argc, char ***argv)
{
    if (dist_on || !launched_by_mpirun())
        return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return al_fail("MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size);
    dist_on = true;
    return 0;
}

void al_dist_finalize(void)
{
    if (!dist_on)
        return;
    MPI_Finalize();
    dist_on = false;
    dist_rank = 0, dist_size = 1;
}

int al_dist_rank(void) { return dist_rank; }
int al_dist_size(void) { return dist_size; }
size_t al_dist_bytes_reduced(void) { return bytes_reduced; }
double al_dist_seconds_reduced(void) { return seconds_reduced; }

/* An all-reduce whose association is fixed.  MPI keeps a non-commutative reduction's
 * operands in rank order but may still group them as x0 + (x1 + x2), which rounds
 * differently; so the sum runs down a chain: rank r receives the partial sum of ranks
 * 0..r-1, adds its own on the right and passes it on, and the last rank broadcasts the
 * total.  Chunks keep the chain busy (rank r+1 adds chunk c while rank r adds c+1). */
typedef void add_fn(void *in, void *inout, int *len, MPI_Datatype *type);

static int ordered_sum(void *x, size_t n, size_t elem, MPI_Datatype type, add_fn *add)
{
    if (!dist_on || dist_size == 1 || n == 0)
        return 0;
    const double t0 = al_now();
    const size_t chunk = (size_t)1 << 20;
    void *left = malloc((n < chunk ? n : chunk) * elem);
    if (!left)
        return al_fail("out of memory");
    char *p = x;
    int rc = MPI_SUCCESS;
    for (size_t done = 0; done < n && rc == MPI_SUCCESS; done += chunk) {
        int k = (int)(n - done < chunk ? n - done : chunk);
        void *at = p + done * elem;
        if (dist_rank > 0) {
            rc = MPI_Recv(left, k, type, dist_rank - 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (rc == MPI_SUCCESS)
                add(left, at, &k, &type); /* at = left + at */
        }
        if (rc == MPI_SUCCESS && dist_rank < dist_size - 1)
            rc = MPI_Send(at, k, type, dist_rank + 1, 7, MPI_COMM_WORLD);
    }
    free(left);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "summing over the ranks");
    for (size_t done = 0; done < n && rc == MPI_SUCCESS; done += chunk) {
        int k = (int)(n - done < chunk ? n - done : chunk);
        rc = MPI_Bcast(p + done * elem, k, type, dist_size - 1, MPI_COMM_WORLD);
    }
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "sharing the sum");
    bytes_reduced += n * elem;
    seconds_reduced += al_now() - t0;
    return 0;
}

int al_dist_sum_floats(float *x, size_t n) { return ordered_sum(x, n, sizeof *x, MPI_FLOAT, sum_f32); }
int al_dist_sum_doubles(double *x, size_t n) { return ordered_sum(x, n, sizeof *x, MPI_DOUBLE, sum_f64); }

int al_dist_bcast(void *buf, size_t bytes, int root)
{
    if (!dist_on || dist_size == 1)
        return 0;
    char *p = buf;
    for (size_t done = 0; done < bytes; done += INT_MAX / 2) {
        int k = (int)(bytes - done < (size_t)INT_MAX / 2 ? bytes - done : (size_t)INT_MAX / 2);
        int rc = MPI_Bcast(p + done, k, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "broadcast");
    }
    return 0;
}

int al_dist_barrier(void)
{
    if (!dist_on || dist_size == 1)
        return 0;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "barrier");
}

void al_dist_abort(const char *why)
{
    fprintf(stderr, "align: rank %d of %d: %s\n", dist_rank, dist_size, why);
    if (dist_on)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}
