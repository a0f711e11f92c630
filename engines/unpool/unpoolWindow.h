/*
 * SegNet mask-unpooling: per-window selection logic shared by the CUDA kernel and the CPU reference runner.
 *
 * This header has no TensorRT dependency and compiles with nvcc (device + host) and with a plain host C++ compiler
 * (g++/clang++ with the CUDA include directory on the path, for cuda_fp16.h / cuda_bf16.h host conversions).
 *
 * Semantics (must match toolkit.models.unpool.mask_unpool bit-for-bit):
 *   for each 2x2 window of x with values x_k, k = 0..3 in row-major order
 *   (k=0:(2i,2j), 1:(2i,2j+1), 2:(2i+1,2j), 3:(2i+1,2j+1)):
 *     m  = max of the four, NaN-propagating (any NaN -> m is NaN)
 *     k* = first k with x_k == m, or 3 if none compares equal (NaN case)
 *     out[k*] = y[n,c,i,j]; the three other positions are written as +0.0 (never multiplied, so never -0.0).
 *   For NaN-free input this is exactly torch max_pool2d(2, 2, return_indices=True) + max_unpool2d, which keeps the
 *   first maximum of each window.
 *
 * NOTE: do not build this code with flush-to-zero (nvcc --use_fast_math / -ftz=true): FTZ comparisons would treat
 * float32 subnormals as 0 and change tie-breaking.
 */
#ifndef SEGNET_UNPOOL_WINDOW_H
#define SEGNET_UNPOOL_WINDOW_H

#include <cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#if defined(__CUDACC__)
#define SEGNET_HD __host__ __device__ __forceinline__
#else
#define SEGNET_HD inline
#endif

namespace segnet
{
namespace unpool
{

//! Exact conversion to float (fp16/bf16 -> fp32 is exact and order/NaN preserving) and a +0.0 constant.
template <typename T>
struct ValueTraits;

template <>
struct ValueTraits<float>
{
    static SEGNET_HD float toFloat(float v)
    {
        return v;
    }
    static SEGNET_HD float positiveZero()
    {
        return 0.0F;
    }
};

template <>
struct ValueTraits<__half>
{
    static SEGNET_HD float toFloat(__half v)
    {
        return __half2float(v);
    }
    static SEGNET_HD __half positiveZero()
    {
        __half_raw r;
        r.x = 0U; // bit pattern of +0.0
        return __half(r);
    }
};

template <>
struct ValueTraits<__nv_bfloat16>
{
    static SEGNET_HD float toFloat(__nv_bfloat16 v)
    {
        return __bfloat162float(v);
    }
    static SEGNET_HD __nv_bfloat16 positiveZero()
    {
        __nv_bfloat16_raw r;
        r.x = 0U; // bit pattern of +0.0
        return __nv_bfloat16(r);
    }
};

//! NaN-propagating max: NaN if either operand is NaN, otherwise the larger one (the first one on ties).
SEGNET_HD float maxPropagateNan(float a, float b)
{
    if (a != a)
    {
        return a;
    }
    if (b != b)
    {
        return b;
    }
    return b > a ? b : a;
}

//! Index k* (0..3, row-major in the 2x2 window) of the position that receives the decoder value.
SEGNET_HD int32_t selectWindowPosition(float x0, float x1, float x2, float x3)
{
    float const m = maxPropagateNan(maxPropagateNan(maxPropagateNan(x0, x1), x2), x3);
    if (x0 == m)
    {
        return 0;
    }
    if (x1 == m)
    {
        return 1;
    }
    if (x2 == m)
    {
        return 2;
    }
    return 3; // x3 == m, or m is NaN (nothing compares equal)
}

//! Process one 2x2 window.
//! \param x       pre-pool encoder feature, contiguous [planes, 2*halfH, 2*halfW] (planes = N*C)
//! \param y       decoder feature, contiguous [planes, halfH, halfW]
//! \param out     output, contiguous [planes, 2*halfH, 2*halfW]
//! \param window  linear window index in [0, planes*halfH*halfW); equals the linear index of y[n,c,i,j]
template <typename T>
SEGNET_HD void unpoolWindow(T const* x, T const* y, T* out, int64_t window, int64_t halfH, int64_t halfW)
{
    int64_t const j = window % halfW;
    int64_t const rest = window / halfW;
    int64_t const i = rest % halfH;
    int64_t const plane = rest / halfH;
    int64_t const width = 2 * halfW;
    int64_t const base = (plane * 2 * halfH + 2 * i) * width + 2 * j;

    int32_t const k = selectWindowPosition(ValueTraits<T>::toFloat(x[base]), ValueTraits<T>::toFloat(x[base + 1]),
        ValueTraits<T>::toFloat(x[base + width]), ValueTraits<T>::toFloat(x[base + width + 1]));

    T const value = y[window];
    T const zero = ValueTraits<T>::positiveZero();
    out[base] = (k == 0) ? value : zero;
    out[base + 1] = (k == 1) ? value : zero;
    out[base + width] = (k == 2) ? value : zero;
    out[base + width + 1] = (k == 3) ? value : zero;
}

} // namespace unpool
} // namespace segnet

#endif // SEGNET_UNPOOL_WINDOW_H
