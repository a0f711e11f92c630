/*
 * Entry points of libsegnet_plugins.so, in the form IPluginRegistry::loadLibrary() expects for IPluginV3 creators
 * (the same pair of C symbols TensorRT's own version-compatible plugin library, libnvinfer_vc_plugin, exports):
 *
 *   extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
 *   extern "C" void setLoggerFinder(ILoggerFinder* finder);
 *
 * Load the library with trt.get_plugin_registry().load_library(path) (Python), IPluginRegistry::loadLibrary (C++) or
 * trtexec --dynamicPlugins=path. There is deliberately no static REGISTER_TENSORRT_PLUGIN registration: loadLibrary()
 * fails when a creator of the library is already registered, so the two mechanisms must not be combined, and the
 * loadLibrary path needs no link against libnvinfer (works with version-compatible / lean-runtime engines and can be
 * serialized into the engine with --setPluginsToSerialize).
 */
#include "common/segnetPluginCommon.h"
#include "unpool/unpoolPlugin.h"

#include <cstdint>

extern "C" SEGNET_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static segnet::plugin::MaskUnpoolPluginCreator sMaskUnpoolCreator;
    static nvinfer1::IPluginCreatorInterface* const kPLUGIN_CREATORS[] = {&sMaskUnpoolCreator};
    nbCreators = static_cast<int32_t>(sizeof(kPLUGIN_CREATORS) / sizeof(kPLUGIN_CREATORS[0]));
    return kPLUGIN_CREATORS;
}

extern "C" SEGNET_PLUGIN_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    segnet::plugin::setLoggerFinder(finder);
}
