#include "unpoolPlugin.h"

#include "common/segnetPluginCommon.h"
#include "unpoolKernel.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <exception>
#include <memory>
#include <sstream>
#include <utility>

using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::IDimensionExpr;
using nvinfer1::IPluginCapability;
using nvinfer1::IPluginV3;
using nvinfer1::PluginCapabilityType;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;

namespace segnet
{
namespace plugin
{
namespace
{

constexpr int32_t kNB_INPUTS = 2;  // x, y
constexpr int32_t kNB_OUTPUTS = 1; // out
constexpr int32_t kRANK = 4;       // NCHW
constexpr int32_t kINPUT_X = 0;
constexpr int32_t kINPUT_Y = 1;

bool isSupportedType(DataType type) noexcept
{
    return type == DataType::kFLOAT || type == DataType::kHALF || type == DataType::kBF16;
}

std::string dimsToString(Dims const& dims)
{
    std::ostringstream os;
    os << "[";
    for (int32_t i = 0; i < dims.nbDims && i < Dims::MAX_DIMS; ++i)
    {
        os << (i > 0 ? ", " : "") << dims.d[i];
    }
    os << "]";
    return os.str();
}

//! Shape relations between x and y; negative extents (build-time wildcards) are not checked.
//! With requireKnown, every extent must be known and non-negative (runtime shapes).
std::string checkInputDims(Dims const& x, Dims const& y, bool requireKnown)
{
    if (x.nbDims != kRANK || y.nbDims != kRANK)
    {
        return "x and y must be 4-D NCHW tensors, got x " + dimsToString(x) + " and y " + dimsToString(y);
    }
    for (int32_t i = 0; i < kRANK; ++i)
    {
        if (requireKnown && (x.d[i] < 0 || y.d[i] < 0))
        {
            return "unknown extent in x " + dimsToString(x) + " or y " + dimsToString(y);
        }
    }
    for (int32_t i = 2; i < kRANK; ++i)
    {
        if (x.d[i] >= 0 && x.d[i] % 2 != 0)
        {
            return "H and W of x must be even, got x " + dimsToString(x);
        }
        if (x.d[i] >= 0 && y.d[i] >= 0 && y.d[i] * 2 != x.d[i])
        {
            return "y must be [N, C, H/2, W/2] for x [N, C, H, W], got x " + dimsToString(x) + " and y "
                + dimsToString(y);
        }
    }
    for (int32_t i = 0; i < 2; ++i)
    {
        if (x.d[i] >= 0 && y.d[i] >= 0 && x.d[i] != y.d[i])
        {
            return "N and C of x and y must match, got x " + dimsToString(x) + " and y " + dimsToString(y);
        }
    }
    return {};
}

bool isConstant(IDimensionExpr const* expr) noexcept
{
    return expr != nullptr && expr->isConstant();
}

} // namespace

// ---------------------------------------------------------------------------------------------------------------
// MaskUnpoolPlugin
// ---------------------------------------------------------------------------------------------------------------

MaskUnpoolPlugin::MaskUnpoolPlugin(std::string layerName)
    : mLayerName(std::move(layerName))
{
}

IPluginCapability* MaskUnpoolPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* MaskUnpoolPlugin::clone() noexcept
{
    try
    {
        return std::make_unique<MaskUnpoolPlugin>(*this).release();
    }
    catch (std::exception const& e)
    {
        logError(std::string(kMASK_UNPOOL_PLUGIN_NAME) + ": clone failed: " + e.what());
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "SegNetMaskUnpool: clone failed");
    }
    return nullptr;
}

char const* MaskUnpoolPlugin::getPluginName() const noexcept
{
    return kMASK_UNPOOL_PLUGIN_NAME;
}

char const* MaskUnpoolPlugin::getPluginVersion() const noexcept
{
    return kMASK_UNPOOL_PLUGIN_VERSION;
}

char const* MaskUnpoolPlugin::getPluginNamespace() const noexcept
{
    return kMASK_UNPOOL_PLUGIN_NAMESPACE;
}

int32_t MaskUnpoolPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        if (in == nullptr || out == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
        {
            logError(mLayerName + " (SegNetMaskUnpool): expected 2 inputs and 1 output");
            return -1;
        }
        std::string const err = checkInputDims(in[kINPUT_X].desc.dims, in[kINPUT_Y].desc.dims, false);
        if (!err.empty())
        {
            logError(mLayerName + " (SegNetMaskUnpool): " + err);
            return -1;
        }
        DataType const type = in[kINPUT_X].desc.type;
        if (!isSupportedType(type) || in[kINPUT_Y].desc.type != type || out[0].desc.type != type)
        {
            logError(mLayerName + " (SegNetMaskUnpool): x, y and the output must share one of FLOAT/HALF/BF16");
            return -1;
        }
        return 0;
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "SegNetMaskUnpool: configurePlugin failed");
    }
    return -1;
}

int32_t MaskUnpoolPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != kNB_OUTPUTS || nbInputs != kNB_INPUTS)
    {
        return -1;
    }
    outputTypes[0] = inputTypes[kINPUT_X];
    return 0;
}

int32_t MaskUnpoolPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
    int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    try
    {
        if (inputs == nullptr || outputs == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
        {
            logError(mLayerName + " (SegNetMaskUnpool): expected 2 inputs and 1 output");
            return -1;
        }
        DimsExprs const& x = inputs[kINPUT_X];
        DimsExprs const& y = inputs[kINPUT_Y];
        if (x.nbDims != kRANK || y.nbDims != kRANK)
        {
            logError(mLayerName + " (SegNetMaskUnpool): x and y must be 4-D NCHW tensors");
            return -1;
        }
        for (int32_t i = 0; i < kRANK; ++i)
        {
            if (x.d[i] == nullptr || y.d[i] == nullptr)
            {
                return -1;
            }
        }
        // Static checks where the extents are build-time constants; dynamic extents are re-checked in
        // onShapeChange()/enqueue() once they are known.
        for (int32_t i = 2; i < kRANK; ++i)
        {
            if (isConstant(x.d[i]) && x.d[i]->getConstantValue() % 2 != 0)
            {
                logError(mLayerName + " (SegNetMaskUnpool): H and W of x must be even, got "
                    + std::to_string(x.d[i]->getConstantValue()));
                return -1;
            }
            if (isConstant(x.d[i]) && isConstant(y.d[i])
                && y.d[i]->getConstantValue() * 2 != x.d[i]->getConstantValue())
            {
                logError(mLayerName + " (SegNetMaskUnpool): y must be [N, C, H/2, W/2] for x [N, C, H, W]");
                return -1;
            }
        }
        for (int32_t i = 0; i < 2; ++i)
        {
            if (isConstant(x.d[i]) && isConstant(y.d[i]) && x.d[i]->getConstantValue() != y.d[i]->getConstantValue())
            {
                logError(mLayerName + " (SegNetMaskUnpool): N and C of x and y must match");
                return -1;
            }
        }
        // out dims = x dims
        outputs[0].nbDims = kRANK;
        for (int32_t i = 0; i < kRANK; ++i)
        {
            outputs[0].d[i] = x.d[i];
        }
        return 0;
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "SegNetMaskUnpool: getOutputShapes failed");
    }
    return -1;
}

bool MaskUnpoolPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS || pos < 0
        || pos >= kNB_INPUTS + kNB_OUTPUTS)
    {
        return false;
    }
    PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == kINPUT_X)
    {
        return isSupportedType(desc.type);
    }
    // y and the output: same type as x (inOut[0] is already fixed to a supported combination).
    return desc.type == inOut[kINPUT_X].desc.type;
}

int32_t MaskUnpoolPlugin::getNbOutputs() const noexcept
{
    return kNB_OUTPUTS;
}

size_t MaskUnpoolPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

std::string MaskUnpoolPlugin::checkRuntimeDescs(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) const
{
    if (in == nullptr || out == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS)
    {
        return "expected 2 inputs and 1 output";
    }
    std::string err = checkInputDims(in[kINPUT_X].dims, in[kINPUT_Y].dims, true);
    if (!err.empty())
    {
        return err;
    }
    Dims const& x = in[kINPUT_X].dims;
    Dims const& o = out[0].dims;
    if (o.nbDims != kRANK)
    {
        return "output must be 4-D, got " + dimsToString(o);
    }
    for (int32_t i = 0; i < kRANK; ++i)
    {
        if (o.d[i] != x.d[i])
        {
            return "output dims " + dimsToString(o) + " must equal x dims " + dimsToString(x);
        }
    }
    DataType const type = in[kINPUT_X].type;
    if (!isSupportedType(type) || in[kINPUT_Y].type != type || out[0].type != type)
    {
        return "x, y and the output must share one of FLOAT/HALF/BF16";
    }
    if (in[kINPUT_X].format != TensorFormat::kLINEAR || in[kINPUT_Y].format != TensorFormat::kLINEAR
        || out[0].format != TensorFormat::kLINEAR)
    {
        return "only the LINEAR (NCHW) format is supported";
    }
    return {};
}

int32_t MaskUnpoolPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    try
    {
        std::string const err = checkRuntimeDescs(in, nbInputs, out, nbOutputs);
        if (!err.empty())
        {
            logError(mLayerName + " (SegNetMaskUnpool): " + err);
            return -1;
        }
        return 0;
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "SegNetMaskUnpool: onShapeChange failed");
    }
    return -1;
}

int32_t MaskUnpoolPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    try
    {
        if (inputs == nullptr || outputs == nullptr)
        {
            logError(mLayerName + " (SegNetMaskUnpool): null input/output pointer array");
            return -1;
        }
        std::string const err = checkRuntimeDescs(inputDesc, kNB_INPUTS, outputDesc, kNB_OUTPUTS);
        if (!err.empty())
        {
            logError(mLayerName + " (SegNetMaskUnpool): " + err);
            return -1;
        }
        Dims const& x = inputDesc[kINPUT_X].dims;
        int64_t const planes = x.d[0] * x.d[1];
        int64_t const height = x.d[2];
        int64_t const width = x.d[3];

        cudaError_t status = cudaErrorInvalidValue;
        switch (inputDesc[kINPUT_X].type)
        {
        case DataType::kFLOAT:
            status = unpool::launchMaskUnpool<float>(static_cast<float const*>(inputs[kINPUT_X]),
                static_cast<float const*>(inputs[kINPUT_Y]), static_cast<float*>(outputs[0]), planes, height, width,
                stream);
            break;
        case DataType::kHALF:
            status = unpool::launchMaskUnpool<__half>(static_cast<__half const*>(inputs[kINPUT_X]),
                static_cast<__half const*>(inputs[kINPUT_Y]), static_cast<__half*>(outputs[0]), planes, height, width,
                stream);
            break;
        case DataType::kBF16:
            status = unpool::launchMaskUnpool<__nv_bfloat16>(static_cast<__nv_bfloat16 const*>(inputs[kINPUT_X]),
                static_cast<__nv_bfloat16 const*>(inputs[kINPUT_Y]), static_cast<__nv_bfloat16*>(outputs[0]), planes,
                height, width, stream);
            break;
        default: break;
        }
        if (status != cudaSuccess)
        {
            logError(mLayerName + " (SegNetMaskUnpool): kernel launch failed: " + cudaGetErrorString(status));
            return -1;
        }
        return 0;
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "SegNetMaskUnpool: enqueue failed");
    }
    return -1;
}

IPluginV3* MaskUnpoolPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

PluginFieldCollection const* MaskUnpoolPlugin::getFieldsToSerialize() noexcept
{
    // No attributes: nothing to serialize.
    mFieldsToSerialize.nbFields = 0;
    mFieldsToSerialize.fields = nullptr;
    return &mFieldsToSerialize;
}

// ---------------------------------------------------------------------------------------------------------------
// MaskUnpoolPluginCreator
// ---------------------------------------------------------------------------------------------------------------

char const* MaskUnpoolPluginCreator::getPluginName() const noexcept
{
    return kMASK_UNPOOL_PLUGIN_NAME;
}

char const* MaskUnpoolPluginCreator::getPluginVersion() const noexcept
{
    return kMASK_UNPOOL_PLUGIN_VERSION;
}

char const* MaskUnpoolPluginCreator::getPluginNamespace() const noexcept
{
    return kMASK_UNPOOL_PLUGIN_NAMESPACE;
}

PluginFieldCollection const* MaskUnpoolPluginCreator::getFieldNames() noexcept
{
    return &mFieldNames;
}

IPluginV3* MaskUnpoolPluginCreator::createPlugin(
    char const* name, PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    try
    {
        std::string const layerName = name != nullptr ? name : "";
        if (fc != nullptr && fc->nbFields > 0)
        {
            if (fc->fields == nullptr)
            {
                logError(layerName + " (SegNetMaskUnpool): invalid PluginFieldCollection (null fields)");
                return nullptr;
            }
            // The op has no attributes; tolerate (and report) extra ones, e.g. passed through by a parser.
            for (int32_t i = 0; i < fc->nbFields; ++i)
            {
                char const* const fieldName = fc->fields[i].name;
                logWarning(layerName + " (SegNetMaskUnpool): ignoring unknown attribute '"
                    + (fieldName != nullptr ? fieldName : "(null)") + "'");
            }
        }
        return std::make_unique<MaskUnpoolPlugin>(layerName).release();
    }
    catch (std::exception const& e)
    {
        logError(std::string("SegNetMaskUnpool: createPlugin failed: ") + e.what());
    }
    catch (...)
    {
        logMessage(nvinfer1::ILogger::Severity::kERROR, "SegNetMaskUnpool: createPlugin failed");
    }
    return nullptr;
}

} // namespace plugin
} // namespace segnet
