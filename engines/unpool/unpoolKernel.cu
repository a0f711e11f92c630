/*
 * SegNet mask-unpooling CUDA kernel.
 *
 * One thread per 2x2 window (grid-stride loop, 64-bit indexing): reads the four x values of the window, picks k*
 * (see unpoolWindow.h), writes y[n,c,i,j] at k* and +0.0 at the three other positions. Every output element is
 * written exactly once, so no memset of the output is needed.
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

} // namespace

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
    int64_t blocks = (numWindows + kTHREADS_PER_BLOCK - 1) / kTHREADS_PER_BLOCK;
    if (blocks > kMAX_BLOCKS)
    {
        blocks = kMAX_BLOCKS;
    }
    maskUnpoolKernel<T>
        <<<static_cast<unsigned int>(blocks), kTHREADS_PER_BLOCK, 0, stream>>>(x, y, out, numWindows, halfH, halfW);
    return cudaGetLastError();
}

template cudaError_t launchMaskUnpool<float>(
    float const*, float const*, float*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t launchMaskUnpool<__half>(
    __half const*, __half const*, __half*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t launchMaskUnpool<__nv_bfloat16>(
    __nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, int64_t, int64_t, int64_t, cudaStream_t);

} // namespace unpool
} // namespace segnet
