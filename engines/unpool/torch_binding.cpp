/*
 * Test-only PyTorch binding of the SegNetMaskUnpool CUDA kernel (not part of libsegnet_plugins.so).
 * Built on the fly by tests/engines/test_unpool_kernel.py with torch.utils.cpp_extension.load(
 *     sources=[engines/unpool/torch_binding.cpp, engines/unpool/unpoolKernel.cu]).
 */
#include "unpoolKernel.h"

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

namespace
{

torch::Tensor maskUnpool(torch::Tensor const& x, torch::Tensor const& y)
{
    TORCH_CHECK(x.is_cuda() && y.is_cuda(), "x and y must be CUDA tensors");
    TORCH_CHECK(x.dim() == 4 && y.dim() == 4, "x and y must be 4-D NCHW");
    TORCH_CHECK(x.scalar_type() == y.scalar_type(), "x and y must have the same dtype");
    TORCH_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0, "H and W of x must be even");
    TORCH_CHECK(y.size(0) == x.size(0) && y.size(1) == x.size(1) && y.size(2) * 2 == x.size(2)
            && y.size(3) * 2 == x.size(3),
        "y must be [N, C, H/2, W/2]");
    c10::cuda::CUDAGuard guard(x.device());
    torch::Tensor const xc = x.contiguous();
    torch::Tensor const yc = y.contiguous();
    // torch::empty, not zeros: the kernel must write every element itself.
    torch::Tensor out = torch::empty_like(xc);
    int64_t const planes = x.size(0) * x.size(1);
    cudaStream_t const stream = c10::cuda::getCurrentCUDAStream().stream();
    cudaError_t status = cudaErrorInvalidValue;
    switch (x.scalar_type())
    {
    case torch::kFloat32:
        status = segnet::unpool::launchMaskUnpool<float>(xc.data_ptr<float>(), yc.data_ptr<float>(),
            out.data_ptr<float>(), planes, x.size(2), x.size(3), stream);
        break;
    case torch::kFloat16:
        status = segnet::unpool::launchMaskUnpool<__half>(reinterpret_cast<__half const*>(xc.data_ptr<at::Half>()),
            reinterpret_cast<__half const*>(yc.data_ptr<at::Half>()), reinterpret_cast<__half*>(out.data_ptr<at::Half>()),
            planes, x.size(2), x.size(3), stream);
        break;
    case torch::kBFloat16:
        status = segnet::unpool::launchMaskUnpool<__nv_bfloat16>(
            reinterpret_cast<__nv_bfloat16 const*>(xc.data_ptr<at::BFloat16>()),
            reinterpret_cast<__nv_bfloat16 const*>(yc.data_ptr<at::BFloat16>()),
            reinterpret_cast<__nv_bfloat16*>(out.data_ptr<at::BFloat16>()), planes, x.size(2), x.size(3), stream);
        break;
    default: TORCH_CHECK(false, "unsupported dtype ", x.scalar_type());
    }
    TORCH_CHECK(status == cudaSuccess, "launchMaskUnpool failed: ", cudaGetErrorString(status));
    return out;
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("mask_unpool", &maskUnpool, "SegNetMaskUnpool CUDA kernel (x, y) -> out");
}
