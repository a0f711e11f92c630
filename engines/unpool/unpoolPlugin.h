/*
 * SegNetMaskUnpool: TensorRT IPluginV3 plugin for SegNet's max-unpooling with the encoder-feature mask.
 *
 *   inputs : x   [N, C, H, W]     pre-pool encoder feature (H, W even)
 *            y   [N, C, H/2, W/2] decoder feature, same dtype as x
 *   output : out [N, C, H, W]     same dtype as x
 *   dtypes : kFLOAT, kHALF, kBF16 (all three tensors the same), format kLINEAR
 *   attributes: none
 *
 * See unpoolWindow.h for the exact per-window semantics and README.md for the ONNX contract.
 */
#ifndef SEGNET_UNPOOL_PLUGIN_H
#define SEGNET_UNPOOL_PLUGIN_H

#include "NvInferRuntime.h"

#include <cstdint>
#include <string>

namespace segnet
{
namespace plugin
{

// Contract with the Python exporter (toolkit); keep in sync with engines/unpool/README.md.
constexpr char const* kMASK_UNPOOL_PLUGIN_NAME = "SegNetMaskUnpool";
constexpr char const* kMASK_UNPOOL_PLUGIN_VERSION = "1";
constexpr char const* kMASK_UNPOOL_PLUGIN_NAMESPACE = "";
constexpr char const* kMASK_UNPOOL_ONNX_DOMAIN = "trt.plugins";
constexpr char const* kSEGNET_PLUGIN_LIBRARY_NAME = "libsegnet_plugins.so";

class MaskUnpoolPlugin final : public nvinfer1::IPluginV3,
                               public nvinfer1::IPluginV3OneCore,
                               public nvinfer1::IPluginV3OneBuild,
                               public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit MaskUnpoolPlugin(std::string layerName);
    MaskUnpoolPlugin(MaskUnpoolPlugin const&) = default;
    MaskUnpoolPlugin& operator=(MaskUnpoolPlugin const&) = delete;
    ~MaskUnpoolPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    //! Validate concrete runtime shapes/types; returns an empty string when valid, else the reason.
    std::string checkRuntimeDescs(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) const;

    std::string mLayerName;
    nvinfer1::PluginFieldCollection mFieldsToSerialize{0, nullptr};
};

class MaskUnpoolPluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    MaskUnpoolPluginCreator() noexcept = default;
    ~MaskUnpoolPluginCreator() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

private:
    nvinfer1::PluginFieldCollection mFieldNames{0, nullptr}; // the op has no attributes
};

} // namespace plugin
} // namespace segnet

#endif // SEGNET_UNPOOL_PLUGIN_H
