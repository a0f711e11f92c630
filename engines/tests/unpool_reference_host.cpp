/*
 * CPU runner for the SegNetMaskUnpool window logic (engines/unpool/unpoolWindow.h), the very code the CUDA kernel
 * runs per window. Used by tests/engines/test_plugin_compile.py to compare against torch max_pool2d + max_unpool2d
 * without a GPU.
 *
 *   unpool_reference_host <f32|f16|bf16> <planes> <height> <width> <x.bin> <y.bin> <out.bin>
 *
 * Files are raw little-endian contiguous NCHW buffers of the given dtype.
 * Build: g++ -std=c++17 -O1 -I engines -isystem <cuda>/include engines/tests/unpool_reference_host.cpp
 */
#include "unpool/unpoolWindow.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace
{

template <typename T>
bool readFile(char const* path, std::vector<T>& data)
{
    FILE* f = std::fopen(path, "rb");
    if (f == nullptr)
    {
        return false;
    }
    size_t const n = std::fread(data.data(), sizeof(T), data.size(), f);
    std::fclose(f);
    return n == data.size();
}

template <typename T>
bool writeFile(char const* path, std::vector<T> const& data)
{
    FILE* f = std::fopen(path, "wb");
    if (f == nullptr)
    {
        return false;
    }
    size_t const n = std::fwrite(data.data(), sizeof(T), data.size(), f);
    std::fclose(f);
    return n == data.size();
}

template <typename T>
int run(int64_t planes, int64_t height, int64_t width, char const* xPath, char const* yPath, char const* outPath)
{
    int64_t const halfH = height / 2;
    int64_t const halfW = width / 2;
    std::vector<T> x(static_cast<size_t>(planes * height * width));
    std::vector<T> y(static_cast<size_t>(planes * halfH * halfW));
    std::vector<T> out(x.size());
    // Poison the output: every element must be written.
    std::memset(static_cast<void*>(out.data()), 0xA5, out.size() * sizeof(T));
    if (!readFile(xPath, x) || !readFile(yPath, y))
    {
        std::fprintf(stderr, "failed to read inputs\n");
        return 2;
    }
    int64_t const numWindows = planes * halfH * halfW;
    for (int64_t w = 0; w < numWindows; ++w)
    {
        segnet::unpool::unpoolWindow<T>(x.data(), y.data(), out.data(), w, halfH, halfW);
    }
    if (!writeFile(outPath, out))
    {
        std::fprintf(stderr, "failed to write output\n");
        return 2;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 8)
    {
        std::fprintf(stderr, "usage: %s <f32|f16|bf16> <planes> <height> <width> <x.bin> <y.bin> <out.bin>\n", argv[0]);
        return 2;
    }
    std::string const dtype = argv[1];
    int64_t const planes = std::atoll(argv[2]);
    int64_t const height = std::atoll(argv[3]);
    int64_t const width = std::atoll(argv[4]);
    if (planes < 0 || height < 0 || width < 0 || height % 2 != 0 || width % 2 != 0)
    {
        std::fprintf(stderr, "bad sizes\n");
        return 2;
    }
    if (dtype == "f32")
    {
        return run<float>(planes, height, width, argv[5], argv[6], argv[7]);
    }
    if (dtype == "f16")
    {
        return run<__half>(planes, height, width, argv[5], argv[6], argv[7]);
    }
    if (dtype == "bf16")
    {
        return run<__nv_bfloat16>(planes, height, width, argv[5], argv[6], argv[7]);
    }
    std::fprintf(stderr, "unknown dtype %s\n", dtype.c_str());
    return 2;
}
