// Entry points of the CPU kernels; each reads only its parameter struct.
#pragma once

#include "jax_mea/params.h"

namespace jax_mea::cpu {

// out = softmax(mask(softcap(scale * q k^T))) v, as AttentionParams describes.
void AttentionForward(const AttentionParams& params);

// dq, dk, dv (and dmask) of one attention call, as AttentionBackwardParams describes.
void AttentionBackward(const AttentionBackwardParams& params);

// Copies past (if any) and the new tokens into the destination cache.
void KvCopy(const KvCopyParams& params);

}  // namespace jax_mea::cpu
