#include "common/segnetPluginCommon.h"

#include <cstdio>
#include <mutex>

namespace segnet
{
namespace plugin
{
namespace
{

std::mutex gLoggerMutex;
nvinfer1::ILoggerFinder* gLoggerFinder{nullptr};

} // namespace

void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    if (gLoggerFinder == nullptr && finder != nullptr)
    {
        gLoggerFinder = finder;
    }
}

void logMessage(nvinfer1::ILogger::Severity severity, char const* message) noexcept
{
    char const* const text = message != nullptr ? message : "(null)";
    nvinfer1::ILogger* logger{nullptr};
    try
    {
        std::lock_guard<std::mutex> lock(gLoggerMutex);
        if (gLoggerFinder != nullptr)
        {
            logger = gLoggerFinder->findLogger();
        }
    }
    catch (...)
    {
        logger = nullptr;
    }
    if (logger != nullptr)
    {
        logger->log(severity, text);
    }
    else if (severity == nvinfer1::ILogger::Severity::kINTERNAL_ERROR
        || severity == nvinfer1::ILogger::Severity::kERROR)
    {
        std::fprintf(stderr, "[segnet_plugins] ERROR: %s\n", text);
    }
}

} // namespace plugin
} // namespace segnet
