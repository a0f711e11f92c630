/*
 * SegNet mask-unpooling CUDA kernel launcher (no TensorRT types; also used by the torch test binding).
 */
#ifndef SEGNET_UNPOOL_KERNEL_H
#define SEGNET_UNPOOL_KERNEL_H

#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

namespace segnet
{
namespace unpool
{

//! Launch the mask-unpooling kernel on `stream` (asynchronous).
//!
//! \param x       pre-pool encoder feature, contiguous NCHW [planes, height, width]
//! \param y       decoder feature, contiguous NCHW [planes, height/2, width/2]
//! \param out     output, contiguous NCHW [planes, height, width]; every element is written
//! \param planes  N*C
//! \param height  H of x / out (must be even)
//! \param width   W of x / out (must be even)
//!
//! \return cudaSuccess, cudaErrorInvalidValue for bad arguments (negative or odd sizes, null pointers with a
//!         non-empty tensor), or the launch error reported by cudaGetLastError(). Empty tensors launch nothing.
//!
//! Instantiated for T = float, __half and __nv_bfloat16.
template <typename T>
cudaError_t launchMaskUnpool(
    T const* x, T const* y, T* out, int64_t planes, int64_t height, int64_t width, cudaStream_t stream);

//! True when launchMaskUnpool takes the vectorised kernel for these pointers and width (W/2 a multiple of 8 bytes
//! worth of values, x/out 16-byte and y 8-byte aligned); otherwise it runs one thread per window. Same results.
template <typename T>
bool usesVectorisedPath(T const* x, T const* y, T* out, int64_t width);

extern template bool usesVectorisedPath<float>(float const*, float const*, float*, int64_t);
extern template bool usesVectorisedPath<__half>(__half const*, __half const*, __half*, int64_t);
extern template bool usesVectorisedPath<__nv_bfloat16>(
    __nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, int64_t);

extern template cudaError_t launchMaskUnpool<float>(
    float const*, float const*, float*, int64_t, int64_t, int64_t, cudaStream_t);
extern template cudaError_t launchMaskUnpool<__half>(
    __half const*, __half const*, __half*, int64_t, int64_t, int64_t, cudaStream_t);
extern template cudaError_t launchMaskUnpool<__nv_bfloat16>(
    __nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, int64_t, int64_t, int64_t, cudaStream_t);

} // namespace unpool
} // namespace segnet

#endif // SEGNET_UNPOOL_KERNEL_H
