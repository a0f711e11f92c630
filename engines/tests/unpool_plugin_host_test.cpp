/*
 * Host-side behaviour test of libsegnet_plugins.so through its exported entry points, the way
 * IPluginRegistry::loadLibrary() uses it: dlopen -> setLoggerFinder -> getCreators -> createPlugin -> the IPluginV3
 * capability interfaces. Needs only the TensorRT headers (no libnvinfer) and the CUDA runtime.
 *
 * Without a GPU, enqueue() is checked to fail cleanly (argument errors, or the launch error). With a GPU, enqueue()
 * runs for float/half/bf16 and the result is compared bit-for-bit with the CPU loop over unpoolWindow().
 *
 *   unpool_plugin_host_test <path/to/libsegnet_plugins.so>
 *
 * Build (see tests/engines/test_plugin_compile.py):
 *   g++ -std=c++17 -I engines -isystem <trt>/include -isystem <cuda>/include engines/tests/unpool_plugin_host_test.cpp \
 *       -L<cuda>/lib64 -lcudart_static -ldl -lpthread -lrt
 */
#include "NvInferRuntime.h"
#include "unpool/unpoolPlugin.h"
#include "unpool/unpoolWindow.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace
{

int gFailures = 0;
int gChecks = 0;

#define CHECK(cond)                                                                                                    \
    do                                                                                                                 \
    {                                                                                                                  \
        ++gChecks;                                                                                                     \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            ++gFailures;                                                                                               \
            std::fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);                                     \
        }                                                                                                              \
    } while (0)

// ---- Logger plumbing (what TensorRT hands to setLoggerFinder) ----
class CaptureLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING)
        {
            messages.emplace_back(msg);
        }
    }
    bool contains(char const* needle) const
    {
        for (auto const& m : messages)
        {
            if (m.find(needle) != std::string::npos)
            {
                return true;
            }
        }
        return false;
    }
    std::vector<std::string> messages;
};

class Finder : public ILoggerFinder
{
public:
    explicit Finder(ILogger* logger)
        : mLogger(logger)
    {
    }
    ILogger* findLogger() override
    {
        return mLogger;
    }

private:
    ILogger* mLogger;
};

// ---- Minimal IDimensionExpr / IExprBuilder stand-ins (TensorRT normally provides these) ----
class FakeDimImpl : public apiv::VDimensionExpr
{
public:
    FakeDimImpl(bool constant, int64_t value)
        : mConstant(constant)
        , mValue(value)
    {
    }
    bool isConstant() const override
    {
        return mConstant;
    }
    int64_t getConstantValue() const override
    {
        return mConstant ? mValue : -1;
    }
    bool isSizeTensor() const override
    {
        return false;
    }

private:
    bool mConstant;
    int64_t mValue;
};

class FakeDim : public IDimensionExpr
{
public:
    FakeDim(bool constant, int64_t value)
        : mFake(constant, value)
    {
        mImpl = &mFake;
    }
    ~FakeDim() noexcept override = default;

private:
    FakeDimImpl mFake;
};

class FakeBuilderImpl : public apiv::VExprBuilder
{
public:
    IDimensionExpr const* constant(int64_t value) override
    {
        dims.emplace_back(std::make_unique<FakeDim>(true, value));
        return dims.back().get();
    }
    IDimensionExpr const* operation(DimensionOperation, IDimensionExpr const&, IDimensionExpr const&) override
    {
        dims.emplace_back(std::make_unique<FakeDim>(false, 0));
        return dims.back().get();
    }
    IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override
    {
        return nullptr;
    }
    std::deque<std::unique_ptr<FakeDim>> dims;
};

class FakeBuilder : public IExprBuilder
{
public:
    FakeBuilder()
    {
        mImpl = &mFake;
    }
    ~FakeBuilder() noexcept override = default;
    FakeBuilderImpl mFake;
};

struct DimsPool
{
    // -1 = symbolic (non-constant) extent
    DimsExprs make(std::vector<int64_t> const& extents)
    {
        DimsExprs e{};
        e.nbDims = static_cast<int32_t>(extents.size());
        for (size_t i = 0; i < extents.size(); ++i)
        {
            pool.emplace_back(std::make_unique<FakeDim>(extents[i] >= 0, extents[i]));
            e.d[i] = pool.back().get();
        }
        return e;
    }
    std::deque<std::unique_ptr<FakeDim>> pool;
};

Dims dims4(int64_t n, int64_t c, int64_t h, int64_t w)
{
    Dims d{};
    d.nbDims = 4;
    d.d[0] = n;
    d.d[1] = c;
    d.d[2] = h;
    d.d[3] = w;
    return d;
}

PluginTensorDesc desc(Dims const& d, DataType t, TensorFormat f = TensorFormat::kLINEAR)
{
    PluginTensorDesc r{};
    r.dims = d;
    r.type = t;
    r.format = f;
    r.scale = -1.0F;
    return r;
}

DynamicPluginTensorDesc dyn(Dims const& d, DataType t, TensorFormat f = TensorFormat::kLINEAR)
{
    DynamicPluginTensorDesc r{};
    r.desc = desc(d, t, f);
    r.min = d;
    r.max = d;
    r.opt = d;
    return r;
}

// ---- GPU execution check (only when a CUDA device is usable) ----
template <typename T>
T fromFloat(float v);
template <>
float fromFloat<float>(float v)
{
    return v;
}
template <>
__half fromFloat<__half>(float v)
{
    return __float2half(v);
}
template <>
__nv_bfloat16 fromFloat<__nv_bfloat16>(float v)
{
    return __float2bfloat16(v);
}

template <typename T>
void runOnGpu(IPluginV3OneRuntime* runtime, DataType type, Dims const& xd, bool tieHeavy, uint32_t seed)
{
    int64_t const planes = xd.d[0] * xd.d[1];
    int64_t const h = xd.d[2];
    int64_t const w = xd.d[3];
    size_t const nx = static_cast<size_t>(planes * h * w);
    size_t const ny = nx / 4;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    std::uniform_int_distribution<int> level(-1, 1);
    std::vector<T> x(nx), y(ny), out(nx), ref(nx);
    for (auto& v : x)
    {
        v = fromFloat<T>(tieHeavy ? static_cast<float>(level(rng)) * 0.5F : normal(rng));
    }
    if (tieHeavy)
    {
        for (size_t i = 0; i < nx; i += 17)
        {
            x[i] = fromFloat<T>(-0.0F);
        }
    }
    for (auto& v : y)
    {
        v = fromFloat<T>(normal(rng));
    }
    for (int64_t win = 0; win < static_cast<int64_t>(ny); ++win)
    {
        segnet::unpool::unpoolWindow<T>(x.data(), y.data(), ref.data(), win, h / 2, w / 2);
    }
    void* dx = nullptr;
    void* dy = nullptr;
    void* dout = nullptr;
    CHECK(cudaMalloc(&dx, nx * sizeof(T)) == cudaSuccess);
    CHECK(cudaMalloc(&dy, ny * sizeof(T)) == cudaSuccess);
    CHECK(cudaMalloc(&dout, nx * sizeof(T)) == cudaSuccess);
    CHECK(cudaMemcpy(dx, x.data(), nx * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
    CHECK(cudaMemcpy(dy, y.data(), ny * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
    CHECK(cudaMemset(dout, 0xA5, nx * sizeof(T)) == cudaSuccess); // poison: every element must be written
    Dims const yd = dims4(xd.d[0], xd.d[1], h / 2, w / 2);
    PluginTensorDesc const in[2] = {desc(xd, type), desc(yd, type)};
    PluginTensorDesc const o[1] = {desc(xd, type)};
    void const* inputs[2] = {dx, dy};
    void* outputs[1] = {dout};
    CHECK(runtime->onShapeChange(in, 2, o, 1) == 0);
    CHECK(runtime->enqueue(in, o, inputs, outputs, nullptr, nullptr) == 0);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(cudaMemcpy(out.data(), dout, nx * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(std::memcmp(out.data(), ref.data(), nx * sizeof(T)) == 0);
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dout);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: %s <libsegnet_plugins.so>\n", argv[0]);
        return 2;
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr)
    {
        std::fprintf(stderr, "dlopen failed: %s\n", dlerror());
        return 2;
    }
    using GetCreatorsFn = IPluginCreatorInterface* const* (*) (int32_t&);
    using SetLoggerFinderFn = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreatorsFn>(dlsym(lib, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinderFn>(dlsym(lib, "setLoggerFinder"));
    CHECK(getCreators != nullptr);
    CHECK(setLoggerFinder != nullptr);
    CHECK(dlsym(lib, "getPluginCreators") == nullptr); // V3-only library
    if (getCreators == nullptr || setLoggerFinder == nullptr)
    {
        return 1;
    }
    CaptureLogger logger;
    Finder finder(&logger);
    setLoggerFinder(&finder);

    int32_t nbCreators = -1;
    IPluginCreatorInterface* const* creators = getCreators(nbCreators);
    CHECK(nbCreators == 1);
    CHECK(creators != nullptr && creators[0] != nullptr);
    InterfaceInfo const info = creators[0]->getInterfaceInfo();
    CHECK(std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") == 0);
    auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
    CHECK(std::strcmp(creator->getPluginName(), "SegNetMaskUnpool") == 0);
    CHECK(std::strcmp(creator->getPluginVersion(), "1") == 0);
    CHECK(std::strcmp(creator->getPluginNamespace(), "") == 0);
    CHECK(creator->getFieldNames() != nullptr && creator->getFieldNames()->nbFields == 0);

    PluginFieldCollection const emptyFc{0, nullptr};
    std::unique_ptr<IPluginV3> plugin(creator->createPlugin("unpool_test", &emptyFc, TensorRTPhase::kBUILD));
    CHECK(plugin != nullptr);
    if (!plugin)
    {
        return 1;
    }
    std::unique_ptr<IPluginV3> pluginNullFc(creator->createPlugin("unpool_null_fc", nullptr, TensorRTPhase::kBUILD));
    CHECK(pluginNullFc != nullptr);
    int32_t const dummy = 1;
    PluginField const extra("unexpected_attr", &dummy, PluginFieldType::kINT32, 1);
    PluginFieldCollection const extraFc{1, &extra};
    std::unique_ptr<IPluginV3> pluginExtra(creator->createPlugin("unpool_extra", &extraFc, TensorRTPhase::kBUILD));
    CHECK(pluginExtra != nullptr);
    CHECK(logger.contains("unexpected_attr"));
    PluginFieldCollection const badFc{1, nullptr};
    CHECK(creator->createPlugin("unpool_bad", &badFc, TensorRTPhase::kBUILD) == nullptr); // returns, never throws

    CHECK(std::strcmp(plugin->getInterfaceInfo().kind, "PLUGIN") == 0);
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    CHECK(core != nullptr && build != nullptr && runtime != nullptr);
    if (core == nullptr || build == nullptr || runtime == nullptr)
    {
        return 1;
    }
    CHECK(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0);
    CHECK(std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0);
    CHECK(std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0);
    CHECK(std::strcmp(core->getPluginName(), "SegNetMaskUnpool") == 0);
    CHECK(std::strcmp(core->getPluginVersion(), "1") == 0);
    CHECK(std::strcmp(core->getPluginNamespace(), "") == 0);
    CHECK(build->getNbOutputs() == 1);

    // supportsFormatCombination
    {
        Dims const xd = dims4(1, 2, 4, 4);
        Dims const yd = dims4(1, 2, 2, 2);
        for (DataType t : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16})
        {
            DynamicPluginTensorDesc io[3] = {dyn(xd, t), dyn(yd, t), dyn(xd, t)};
            CHECK(build->supportsFormatCombination(0, io, 2, 1));
            CHECK(build->supportsFormatCombination(1, io, 2, 1));
            CHECK(build->supportsFormatCombination(2, io, 2, 1));
        }
        for (DataType t : {DataType::kINT8, DataType::kINT32, DataType::kBOOL, DataType::kINT64, DataType::kFP8})
        {
            DynamicPluginTensorDesc io[3] = {dyn(xd, t), dyn(yd, t), dyn(xd, t)};
            CHECK(!build->supportsFormatCombination(0, io, 2, 1));
        }
        DynamicPluginTensorDesc mixed[3]
            = {dyn(xd, DataType::kFLOAT), dyn(yd, DataType::kHALF), dyn(xd, DataType::kHALF)};
        CHECK(!build->supportsFormatCombination(1, mixed, 2, 1));
        CHECK(!build->supportsFormatCombination(2, mixed, 2, 1));
        DynamicPluginTensorDesc fmt[3] = {dyn(xd, DataType::kHALF, TensorFormat::kCHW2), dyn(yd, DataType::kHALF),
            dyn(xd, DataType::kHALF, TensorFormat::kHWC8)};
        CHECK(!build->supportsFormatCombination(0, fmt, 2, 1));
        CHECK(!build->supportsFormatCombination(2, fmt, 2, 1));
        DynamicPluginTensorDesc ok[3] = {dyn(xd, DataType::kFLOAT), dyn(yd, DataType::kFLOAT), dyn(xd, DataType::kFLOAT)};
        CHECK(!build->supportsFormatCombination(3, ok, 2, 1));
        CHECK(!build->supportsFormatCombination(-1, ok, 2, 1));
        CHECK(!build->supportsFormatCombination(0, ok, 1, 1));
    }

    // getOutputDataTypes
    {
        DataType in[2] = {DataType::kHALF, DataType::kHALF};
        DataType out[1] = {DataType::kFLOAT};
        CHECK(build->getOutputDataTypes(out, 1, in, 2) == 0);
        CHECK(out[0] == DataType::kHALF);
        CHECK(build->getOutputDataTypes(out, 2, in, 2) != 0);
    }

    // getOutputShapes
    {
        FakeBuilder eb;
        DimsPool pool;
        DimsExprs outs[1]{};
        DimsExprs ins[2] = {pool.make({2, 3, 8, 6}), pool.make({2, 3, 4, 3})};
        CHECK(build->getOutputShapes(ins, 2, nullptr, 0, outs, 1, eb) == 0);
        CHECK(outs[0].nbDims == 4);
        for (int i = 0; i < 4; ++i)
        {
            CHECK(outs[0].d[i] == ins[0].d[i]);
        }
        DimsExprs dynIns[2] = {pool.make({-1, 16, -1, -1}), pool.make({-1, 16, -1, -1})};
        CHECK(build->getOutputShapes(dynIns, 2, nullptr, 0, outs, 1, eb) == 0);
        CHECK(outs[0].nbDims == 4 && outs[0].d[2] == dynIns[0].d[2]);

        logger.messages.clear();
        DimsExprs oddH[2] = {pool.make({1, 3, 7, 6}), pool.make({1, 3, -1, 3})};
        CHECK(build->getOutputShapes(oddH, 2, nullptr, 0, outs, 1, eb) != 0);
        CHECK(logger.contains("even"));
        DimsExprs oddW[2] = {pool.make({1, 3, 8, 5}), pool.make({-1, -1, -1, -1})};
        CHECK(build->getOutputShapes(oddW, 2, nullptr, 0, outs, 1, eb) != 0);
        DimsExprs badY[2] = {pool.make({1, 3, 8, 6}), pool.make({1, 3, 4, 4})};
        CHECK(build->getOutputShapes(badY, 2, nullptr, 0, outs, 1, eb) != 0);
        DimsExprs badC[2] = {pool.make({1, 3, 8, 6}), pool.make({1, 4, 4, 3})};
        CHECK(build->getOutputShapes(badC, 2, nullptr, 0, outs, 1, eb) != 0);
        DimsExprs rank3[2] = {pool.make({3, 8, 6}), pool.make({3, 4, 3})};
        CHECK(build->getOutputShapes(rank3, 2, nullptr, 0, outs, 1, eb) != 0);
        CHECK(build->getOutputShapes(ins, 1, nullptr, 0, outs, 1, eb) != 0);
    }

    // configurePlugin (build time; -1 = wildcard)
    {
        Dims const xw = dims4(-1, 8, -1, -1);
        Dims const yw = dims4(-1, 8, -1, -1);
        DynamicPluginTensorDesc in[2] = {dyn(xw, DataType::kHALF), dyn(yw, DataType::kHALF)};
        DynamicPluginTensorDesc out[1] = {dyn(xw, DataType::kHALF)};
        CHECK(build->configurePlugin(in, 2, out, 1) == 0);
        DynamicPluginTensorDesc odd[2] = {dyn(dims4(1, 8, 9, 4), DataType::kHALF), dyn(yw, DataType::kHALF)};
        CHECK(build->configurePlugin(odd, 2, out, 1) != 0);
        DynamicPluginTensorDesc mismatch[2]
            = {dyn(dims4(1, 8, 8, 4), DataType::kHALF), dyn(dims4(1, 8, 4, 4), DataType::kHALF)};
        CHECK(build->configurePlugin(mismatch, 2, out, 1) != 0);
        DynamicPluginTensorDesc types[2] = {dyn(xw, DataType::kHALF), dyn(yw, DataType::kFLOAT)};
        CHECK(build->configurePlugin(types, 2, out, 1) != 0);
        CHECK(build->getWorkspaceSize(in, 2, out, 1) == 0);
    }

    // onShapeChange / enqueue argument checks (no kernel launch happens for these)
    {
        Dims const xd = dims4(2, 3, 8, 6);
        Dims const yd = dims4(2, 3, 4, 3);
        PluginTensorDesc const in[2] = {desc(xd, DataType::kFLOAT), desc(yd, DataType::kFLOAT)};
        PluginTensorDesc const out[1] = {desc(xd, DataType::kFLOAT)};
        CHECK(runtime->onShapeChange(in, 2, out, 1) == 0);
        PluginTensorDesc const oddIn[2] = {desc(dims4(2, 3, 8, 7), DataType::kFLOAT), desc(yd, DataType::kFLOAT)};
        CHECK(runtime->onShapeChange(oddIn, 2, out, 1) != 0);
        PluginTensorDesc const badOut[1] = {desc(dims4(2, 3, 8, 8), DataType::kFLOAT)};
        CHECK(runtime->onShapeChange(in, 2, badOut, 1) != 0);
        PluginTensorDesc const badY[2] = {desc(xd, DataType::kFLOAT), desc(dims4(2, 3, 4, 4), DataType::kFLOAT)};
        CHECK(runtime->onShapeChange(badY, 2, out, 1) != 0);
        PluginTensorDesc const mixed[2] = {desc(xd, DataType::kFLOAT), desc(yd, DataType::kHALF)};
        CHECK(runtime->onShapeChange(mixed, 2, out, 1) != 0);
        PluginTensorDesc const intIn[2] = {desc(xd, DataType::kINT32), desc(yd, DataType::kINT32)};
        PluginTensorDesc const intOut[1] = {desc(xd, DataType::kINT32)};
        CHECK(runtime->onShapeChange(intIn, 2, intOut, 1) != 0);

        void const* inputs[2] = {nullptr, nullptr};
        void* outputs[1] = {nullptr};
        CHECK(runtime->enqueue(oddIn, out, inputs, outputs, nullptr, nullptr) != 0);
        CHECK(runtime->enqueue(in, out, nullptr, outputs, nullptr, nullptr) != 0);
        CHECK(runtime->enqueue(intIn, intOut, inputs, outputs, nullptr, nullptr) != 0);
        // Non-empty tensor with null device pointers: rejected by the launcher (cudaErrorInvalidValue).
        CHECK(runtime->enqueue(in, out, inputs, outputs, nullptr, nullptr) != 0);
        // Empty tensor: nothing to launch, success.
        PluginTensorDesc const emptyIn[2] = {desc(dims4(0, 3, 8, 6), DataType::kFLOAT), desc(dims4(0, 3, 4, 3), DataType::kFLOAT)};
        PluginTensorDesc const emptyOut[1] = {desc(dims4(0, 3, 8, 6), DataType::kFLOAT)};
        CHECK(runtime->enqueue(emptyIn, emptyOut, inputs, outputs, nullptr, nullptr) == 0);
    }

    // Serialization round trip, clone, attachToContext.
    {
        PluginFieldCollection const* fields = runtime->getFieldsToSerialize();
        CHECK(fields != nullptr && fields->nbFields == 0);
        std::unique_ptr<IPluginV3> restored(creator->createPlugin("unpool_test", fields, TensorRTPhase::kRUNTIME));
        CHECK(restored != nullptr);
        std::unique_ptr<IPluginV3> cloned(plugin->clone());
        CHECK(cloned != nullptr && cloned.get() != plugin.get());
        std::unique_ptr<IPluginV3> attached(runtime->attachToContext(nullptr));
        CHECK(attached != nullptr && attached.get() != plugin.get());
        if (attached)
        {
            CHECK(attached->getCapabilityInterface(PluginCapabilityType::kRUNTIME) != nullptr);
        }
    }

    // Kernel execution through enqueue.
    int deviceCount = 0;
    cudaError_t const deviceStatus = cudaGetDeviceCount(&deviceCount);
    if (deviceStatus != cudaSuccess || deviceCount == 0)
    {
        cudaGetLastError();
        // No usable GPU: a real launch must fail cleanly (non-zero return, error logged), never crash.
        Dims const xd = dims4(1, 1, 4, 4);
        Dims const yd = dims4(1, 1, 2, 2);
        PluginTensorDesc const in[2] = {desc(xd, DataType::kFLOAT), desc(yd, DataType::kFLOAT)};
        PluginTensorDesc const out[1] = {desc(xd, DataType::kFLOAT)};
        alignas(16) static float fakeDevice[64];
        void const* inputs[2] = {fakeDevice, fakeDevice};
        void* outputs[1] = {fakeDevice};
        logger.messages.clear();
        CHECK(runtime->enqueue(in, out, inputs, outputs, nullptr, nullptr) != 0);
        CHECK(logger.contains("kernel launch failed"));
        std::printf("GPU: none (%s); enqueue launch path checked to fail cleanly\n", cudaGetErrorString(deviceStatus));
    }
    else
    {
        Dims const shapes[] = {dims4(1, 1, 2, 2), dims4(2, 3, 8, 6), dims4(1, 64, 90, 120), dims4(3, 5, 34, 2)};
        uint32_t seed = 1;
        for (Dims const& s : shapes)
        {
            for (bool tie : {false, true})
            {
                runOnGpu<float>(runtime, DataType::kFLOAT, s, tie, seed++);
                runOnGpu<__half>(runtime, DataType::kHALF, s, tie, seed++);
                runOnGpu<__nv_bfloat16>(runtime, DataType::kBF16, s, tie, seed++);
            }
        }
        std::printf("GPU: %d device(s); enqueue results matched the CPU reference\n", deviceCount);
    }

    plugin.reset();
    pluginNullFc.reset();
    pluginExtra.reset();
    std::printf("%d checks, %d failures\n", gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}
