/* models/internvl_processor: what `mitten preprocess --video` needs of InternVL's processor beyond the part
 * contract - the sampled frames' indices in the source (see internvl_processor.c and media/internvl_video_pre.h). */
#ifndef MT_MODELS_INTERNVL_PROCESSOR_H
#define MT_MODELS_INTERNVL_PROCESSOR_H

#include "media/internvl_video_pre.h"
#include "models/model.h"

extern const mt_processor_part mt_processor_internvl;

/* The frames of the video file at path as the processor impl (m->processor of an InternVL model) samples them with
 * the run's vp: pixel_values (frames, 3, S, S) and frame_indices. Errors name the file; out is written only on
 * success (free with mt_internvl_video_free). */
mt_status mt_internvl_video_sample(const void *impl, const char *path, const mt_video_params *vp,
                                   mt_internvl_video *out, mt_err *err);

#endif
