/*
 * Test-only PyTorch binding of the SegNetMaskUnpool CUDA kernel (not part of libsegnet_plugins.so).
 * Built on the fly by tests/engines/test_unpool_kernel.py and tools/unpool_bandwidth.py with
 * torch.utils.cpp_extension.load(sources=[engines/unpool/torch_binding.cpp, engines/unpool/unpoolKernel.cu]).
 */
#include "unpoolKernel.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

namespace
{

//! Calls fn with the tensors' data pointers as the kernel's element type (float, __half, __nv_bfloat16).
template <typename Fn>
auto withTypedPointers(torch::Tensor const& x, torch::Tensor const& y, torch::Tensor const& out, Fn fn)
{
    TORCH_CHECK(x.scalar_type() == y.scalar_type() && x.scalar_type() == out.scalar_type(), "dtypes differ");
    switch (x.scalar_type())
    {
    case torch::kFloat32: return fn(x.data_ptr<float>(), y.data_ptr<float>(), out.data_ptr<float>());
    case torch::kFloat16:
        return fn(reinterpret_cast<__half const*>(x.data_ptr<at::Half>()),
            reinterpret_cast<__half const*>(y.data_ptr<at::Half>()), reinterpret_cast<__half*>(out.data_ptr<at::Half>()));
    case torch::kBFloat16:
        return fn(reinterpret_cast<__nv_bfloat16 const*>(x.data_ptr<at::BFloat16>()),
            reinterpret_cast<__nv_bfloat16 const*>(y.data_ptr<at::BFloat16>()),
            reinterpret_cast<__nv_bfloat16*>(out.data_ptr<at::BFloat16>()));
    default: TORCH_CHECK(false, "unsupported dtype ", x.scalar_type());
    }
}

void checkShapes(torch::Tensor const& x, torch::Tensor const& y)
{
    TORCH_CHECK(x.is_cuda() && y.is_cuda(), "x and y must be CUDA tensors");
    TORCH_CHECK(x.dim() == 4 && y.dim() == 4, "x and y must be 4-D NCHW");
    TORCH_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0, "H and W of x must be even");
    TORCH_CHECK(y.size(0) == x.size(0) && y.size(1) == x.size(1) && y.size(2) * 2 == x.size(2)
            && y.size(3) * 2 == x.size(3),
        "y must be [N, C, H/2, W/2]");
}

//! The kernel into a caller's contiguous output (a view at an odd offset forces the scalar path).
void maskUnpoolInto(torch::Tensor const& x, torch::Tensor const& y, torch::Tensor& out)
{
    checkShapes(x, y);
    TORCH_CHECK(x.is_contiguous() && y.is_contiguous() && out.is_contiguous(), "tensors must be contiguous");
    TORCH_CHECK(out.sizes() == x.sizes(), "out must have x's shape");
    c10::cuda::CUDAGuard guard(x.device());
    int64_t const planes = x.size(0) * x.size(1);
    cudaStream_t const stream = c10::cuda::getCurrentCUDAStream().stream();
    cudaError_t const status = withTypedPointers(x, y, out, [&](auto const* xp, auto const* yp, auto* op) {
        return segnet::unpool::launchMaskUnpool(xp, yp, op, planes, x.size(2), x.size(3), stream);
    });
    TORCH_CHECK(status == cudaSuccess, "launchMaskUnpool failed: ", cudaGetErrorString(status));
}

torch::Tensor maskUnpool(torch::Tensor const& x, torch::Tensor const& y)
{
    checkShapes(x, y);
    torch::Tensor const xc = x.contiguous();
    torch::Tensor const yc = y.contiguous();
    // torch::empty, not zeros: the kernel must write every element itself.
    torch::Tensor out = torch::empty_like(xc);
    maskUnpoolInto(xc, yc, out);
    return out;
}

//! Whether launchMaskUnpool takes its vectorised kernel for these tensors.
bool vectorised(torch::Tensor const& x, torch::Tensor const& y, torch::Tensor const& out)
{
    return withTypedPointers(x, y, out, [&](auto const* xp, auto const* yp, auto* op) {
        return segnet::unpool::usesVectorisedPath(xp, yp, op, x.size(3));
    });
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("mask_unpool", &maskUnpool, "SegNetMaskUnpool CUDA kernel (x, y) -> out");
    m.def("mask_unpool_into", &maskUnpoolInto, "the kernel into a given contiguous output (x, y, out)");
    m.def("vectorised", &vectorised, "whether (x, y, out) take the vectorised kernel");
}
