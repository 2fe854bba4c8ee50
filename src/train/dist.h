/* train/dist: data parallelism over processes (MPI, Debian's OpenMPI), and the single-process case.
 *
 *     mpirun -np 2 mitten train ...      each rank runs its share of every step's samples; gradients are summed
 *                                        across ranks before clipping, so every rank applies the same update
 *
 * MPI is initialised only when the process was started by mpirun (OMPI_COMM_WORLD_SIZE or PMI_SIZE in the
 * environment), so a plain `mitten train` never touches it. Without MPI at build time every call is the
 * single-process identity. Collectives happen only between steps (never inside a forward pass), so a rank whose
 * share of a step is empty still takes part and nothing can hang.
 */
#ifndef MT_TRAIN_DIST_H
#define MT_TRAIN_DIST_H

#include "base/base.h"

/* Starts MPI when launched by mpirun; safe to call more than once. */
mt_status mt_dist_init(mt_err *err);
void mt_dist_finalize(void);
int mt_dist_rank(void);
int mt_dist_size(void);
/* Element-wise sums across ranks, in place. */
mt_status mt_dist_sum_f32(float *buf, int64_t n, mt_err *err);
mt_status mt_dist_sum_f64(double *buf, int64_t n, mt_err *err);
/* Whether any rank failed: local is this rank's status; a rank that did not fail gets MT_ERR_IO ("another rank
 * failed") when another did, so all ranks stop at the same point instead of waiting in a collective. */
mt_status mt_dist_agree(mt_status local, mt_err *err);
/* Rank 0's status reaches every rank (so all stop together when the one writer fails). */
mt_status mt_dist_share_status(mt_status st, mt_err *err);
mt_status mt_dist_barrier(mt_err *err);

#endif
