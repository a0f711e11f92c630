/*
 * Shared helpers for the SegNet TensorRT plugins: logging through the logger that TensorRT hands to the library
 * (setLoggerFinder), and the export macro for the library entry points.
 */
#ifndef SEGNET_PLUGIN_COMMON_H
#define SEGNET_PLUGIN_COMMON_H

#include "NvInferRuntime.h"

#include <string>

#if defined(_MSC_VER)
#define SEGNET_PLUGIN_API __declspec(dllexport)
#else
#define SEGNET_PLUGIN_API __attribute__((visibility("default")))
#endif

namespace segnet
{
namespace plugin
{

//! Remember the logger finder handed over by TensorRT (IPluginRegistry::loadLibrary calls setLoggerFinder()).
void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Log through TensorRT's logger when one is known; errors go to stderr otherwise. Never throws.
void logMessage(nvinfer1::ILogger::Severity severity, char const* message) noexcept;

inline void logError(std::string const& message) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kERROR, message.c_str());
}

inline void logWarning(std::string const& message) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kWARNING, message.c_str());
}

} // namespace plugin
} // namespace segnet

#endif // SEGNET_PLUGIN_COMMON_H
