/* train/dist: MPI collectives, or their single-process identity. */
#include "train/dist.h"

#include <stdlib.h>

#ifdef MT_HAVE_MPI
#include <mpi.h>

static bool started;
static int rank, size = 1;

static bool launched_by_mpirun(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE"); }

static mt_status check(int rc, const char *what, mt_err *err) {
    if (rc == MPI_SUCCESS) return MT_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return mt_err_set(err, MT_ERR_IO, "MPI %s failed: %.*s", what, len, msg);
}

mt_status mt_dist_init(mt_err *err) {
    if (started || !launched_by_mpirun()) return MT_OK;
    int provided;
    mt_status st = check(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "init", err);
    if (st) return st;
    started = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return MT_OK;
}

void mt_dist_finalize(void) {
    if (started) MPI_Finalize();
    started = false;
    rank = 0;
    size = 1;
}

int mt_dist_rank(void) { return rank; }
int mt_dist_size(void) { return size; }

/* MPI counts are int: large buffers go in chunks */
static mt_status sum(void *buf, int64_t n, MPI_Datatype type, size_t esz, mt_err *err) {
    if (size == 1) return MT_OK;
    const int64_t chunk = (int64_t)1 << 28;
    for (int64_t i = 0; i < n; i += chunk) {
        int c = (int)MT_MIN(chunk, n - i);
        mt_status st = check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)i * esz, c, type, MPI_SUM,
                                           MPI_COMM_WORLD), "all-reduce", err);
        if (st) return st;
    }
    return MT_OK;
}

mt_status mt_dist_sum_f32(float *buf, int64_t n, mt_err *err) { return sum(buf, n, MPI_FLOAT, 4, err); }
mt_status mt_dist_sum_f64(double *buf, int64_t n, mt_err *err) { return sum(buf, n, MPI_DOUBLE, 8, err); }

mt_status mt_dist_share_status(mt_status st, mt_err *err) {
    if (size == 1) return st;
    int code = (int)st;
    mt_status rc = check(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD), "broadcast", err);
    if (rc) return rc;
    if (code && rank != 0) return mt_err_set(err, (mt_status)code, "rank 0 failed (see its message)");
    return (mt_status)code;
}

mt_status mt_dist_agree(mt_status local, mt_err *err) {
    if (size == 1) return local;
    double failed = local ? 1.0 : 0.0;
    mt_err e = {0};
    mt_status st = sum(&failed, 1, MPI_DOUBLE, 8, &e);
    if (st) return local ? local : (*err = e, st);
    if (!local && failed > 0) return mt_err_set(err, MT_ERR_IO, "another rank failed (see its message)");
    return local;
}

mt_status mt_dist_barrier(mt_err *err) {
    if (size == 1) return MT_OK;
    return check(MPI_Barrier(MPI_COMM_WORLD), "barrier", err);
}

#else

mt_status mt_dist_init(mt_err *err) {
    (void)err;
    return MT_OK;
}
void mt_dist_finalize(void) {}
int mt_dist_rank(void) { return 0; }
int mt_dist_size(void) { return 1; }
mt_status mt_dist_sum_f32(float *buf, int64_t n, mt_err *err) {
    (void)buf, (void)n, (void)err;
    return MT_OK;
}
mt_status mt_dist_sum_f64(double *buf, int64_t n, mt_err *err) {
    (void)buf, (void)n, (void)err;
    return MT_OK;
}
mt_status mt_dist_share_status(mt_status st, mt_err *err) {
    (void)err;
    return st;
}
mt_status mt_dist_agree(mt_status local, mt_err *err) {
    (void)err;
    return local;
}
mt_status mt_dist_barrier(mt_err *err) {
    (void)err;
    return MT_OK;
}

#endif
