/*
 * SegNet mask-unpooling CUDA kernel.
 *
 * Every window reads the four x values of its 2x2 window, picks k* (see unpoolWindow.h), writes y[n,c,i,j] at k*
 * and +0.0 at the three other positions. Every output element is written exactly once, so no memset of the output
 * is needed. Grid-stride loops, 64-bit indexing.
 *
 * Two kernels, one rule:
 *  - vectorised (the usual case): one thread takes V adjacent windows of a row, V = 8 bytes / sizeof(T) (4 for
 *    fp16/bf16, 2 for fp32), so each of the two x rows is one 16-byte load, y one 8-byte load, and each output row
 *    one 16-byte store. It needs W/2 to be a multiple of V and x/out 16-byte, y 8-byte aligned: true for
 *    contiguous tensors from a CUDA allocator at every unpooling level when the network's input width is a
 *    multiple of 32 (fp16/bf16) or 16 (fp32), e.g. 480 (360x480: levels of width 480, 240, 120). The toolkit
 *    pads only to a multiple of 8, so a level of another width may take the scalar kernel.
 *    Values move as raw bits; only the comparisons convert them to float, so tie and NaN rules are the scalar ones.
 *  - scalar: one thread per window, for every other shape or alignment.
 * At 1x64x360x480 fp16 on an H100 the vectorised kernel reached 0.98 of a device-to-device copy's bandwidth, the
 * scalar one 0.71; tools/unpool_bandwidth.py measures both against a copy (docs/BENCHMARKS.md section 6).
 */
#include "unpoolKernel.h"
#include "unpoolWindow.h"

namespace segnet
{
namespace unpool
{
namespace
{

constexpr int32_t kTHREADS_PER_BLOCK = 256;
// Cap on the grid size (65535 x 256 threads saturates any current GPU); the grid-stride loop covers the rest.
constexpr int64_t kMAX_BLOCKS = 65535;

template <typename T>
__global__ void __launch_bounds__(kTHREADS_PER_BLOCK) maskUnpoolKernel(T const* __restrict__ x,
    T const* __restrict__ y, T* __restrict__ out, int64_t numWindows, int64_t halfH, int64_t halfW)
{
    int64_t const stride = static_cast<int64_t>(blockDim.x) * static_cast<int64_t>(gridDim.x);
    for (int64_t window = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; window < numWindows;
         window += stride)
    {
        unpoolWindow<T>(x, y, out, window, halfH, halfW);
    }
}

//! Raw bits of one value (moved without conversion, so signed zeros, NaN payloads and subnormals survive).
template <typename T>
struct Bits;
template <>
struct Bits<float>
{
    using Type = uint32_t;
    static __device__ __forceinline__ float toFloat(uint32_t b)
    {
        return __uint_as_float(b);
    }
};
template <>
struct Bits<__half>
{
    using Type = uint16_t;
    static __device__ __forceinline__ float toFloat(uint16_t b)
    {
        return __half2float(__ushort_as_half(b));
    }
};
template <>
struct Bits<__nv_bfloat16>
{
    using Type = uint16_t;
    static __device__ __forceinline__ float toFloat(uint16_t b)
    {
        return __bfloat162float(__ushort_as_bfloat16(b));
    }
};

//! 16 bytes (two x or out rows' worth of V windows) and 8 bytes (V values of y), as one load or store each.
template <typename B>
union Pack16
{
    uint4 raw;
    B v[16 / sizeof(B)];
};
template <typename B>
union Pack8
{
    uint2 raw;
    B v[8 / sizeof(B)];
};

template <typename T>
__host__ __device__ constexpr int64_t windowsPerThread()
{
    return static_cast<int64_t>(8 / sizeof(T));
}

template <typename T>
__global__ void __launch_bounds__(kTHREADS_PER_BLOCK) maskUnpoolVecKernel(T const* __restrict__ x,
    T const* __restrict__ y, T* __restrict__ out, int64_t numGroups, int64_t halfH, int64_t groupsPerRow)
{
    using B = typename Bits<T>::Type;
    constexpr int64_t V = windowsPerThread<T>();
    int64_t const width = 2 * V * groupsPerRow;
    int64_t const stride = static_cast<int64_t>(blockDim.x) * static_cast<int64_t>(gridDim.x);
    for (int64_t group = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < numGroups;
         group += stride)
    {
        int64_t const g = group % groupsPerRow;
        int64_t const row = group / groupsPerRow; // plane * halfH + i
        int64_t const base = 2 * row * width + 2 * V * g;
        Pack16<B> top;
        Pack16<B> bottom;
        Pack8<B> values;
        top.raw = __ldg(reinterpret_cast<uint4 const*>(x + base));
        bottom.raw = __ldg(reinterpret_cast<uint4 const*>(x + base + width));
        values.raw = __ldg(reinterpret_cast<uint2 const*>(y + row * (V * groupsPerRow) + V * g));
        Pack16<B> outTop;
        Pack16<B> outBottom;
#pragma unroll
        for (int64_t w = 0; w < V; ++w)
        {
            int32_t const k = selectWindowPosition(Bits<T>::toFloat(top.v[2 * w]), Bits<T>::toFloat(top.v[2 * w + 1]),
                Bits<T>::toFloat(bottom.v[2 * w]), Bits<T>::toFloat(bottom.v[2 * w + 1]));
            B const value = values.v[w];
            outTop.v[2 * w] = (k == 0) ? value : B{0}; // B{0}: the bits of +0.0 in every type
            outTop.v[2 * w + 1] = (k == 1) ? value : B{0};
            outBottom.v[2 * w] = (k == 2) ? value : B{0};
            outBottom.v[2 * w + 1] = (k == 3) ? value : B{0};
        }
        *reinterpret_cast<uint4*>(out + base) = outTop.raw;
        *reinterpret_cast<uint4*>(out + base + width) = outBottom.raw;
    }
}

bool isAligned(void const* p, uintptr_t bytes)
{
    return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

int64_t gridFor(int64_t items)
{
    int64_t const blocks = (items + kTHREADS_PER_BLOCK - 1) / kTHREADS_PER_BLOCK;
    return blocks > kMAX_BLOCKS ? kMAX_BLOCKS : blocks;
}

} // namespace

template <typename T>
bool usesVectorisedPath(T const* x, T const* y, T* out, int64_t width)
{
    int64_t const halfW = width / 2;
    return halfW % windowsPerThread<T>() == 0 && isAligned(x, 16) && isAligned(out, 16) && isAligned(y, 8);
}

template <typename T>
cudaError_t launchMaskUnpool(
    T const* x, T const* y, T* out, int64_t planes, int64_t height, int64_t width, cudaStream_t stream)
{
    if (planes < 0 || height < 0 || width < 0 || (height % 2) != 0 || (width % 2) != 0)
    {
        return cudaErrorInvalidValue;
    }
    int64_t const halfH = height / 2;
    int64_t const halfW = width / 2;
    int64_t const numWindows = planes * halfH * halfW;
    if (numWindows == 0)
    {
        return cudaSuccess;
    }
    if (x == nullptr || y == nullptr || out == nullptr)
    {
        return cudaErrorInvalidValue;
    }
    if (usesVectorisedPath(x, y, out, width))
    {
        int64_t const groupsPerRow = halfW / windowsPerThread<T>();
        int64_t const numGroups = planes * halfH * groupsPerRow;
        maskUnpoolVecKernel<T><<<static_cast<unsigned int>(gridFor(numGroups)), kTHREADS_PER_BLOCK, 0, stream>>>(
            x, y, out, numGroups, halfH, groupsPerRow);
    }
    else
    {
        maskUnpoolKernel<T><<<static_cast<unsigned int>(gridFor(numWindows)), kTHREADS_PER_BLOCK, 0, stream>>>(
            x, y, out, numWindows, halfH, halfW);
    }
    return cudaGetLastError();
}

template bool usesVectorisedPath<float>(float const*, float const*, float*, int64_t);
template bool usesVectorisedPath<__half>(__half const*, __half const*, __half*, int64_t);
template bool usesVectorisedPath<__nv_bfloat16>(__nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, int64_t);

template cudaError_t launchMaskUnpool<float>(
    float const*, float const*, float*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t launchMaskUnpool<__half>(
    __half const*, __half const*, __half*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t launchMaskUnpool<__nv_bfloat16>(
    __nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, int64_t, int64_t, int64_t, cudaStream_t);

} // namespace unpool
} // namespace segnet
