"""Real-time video segmentation: sources (camera, file, URL, images), a threaded pipeline, overlays, sinks."""

from toolkit.video.overlay import Overlay, OverlayStyle
from toolkit.video.pipeline import Pipeline, RunSummary
from toolkit.video.run import infer_video
from toolkit.video.sinks import DisplaySink, MaskSink, VideoFileSink
from toolkit.video.sources import FrameSource, ImageSource, RetryingSource, UnreadableFrame, open_source

__all__ = [
    "DisplaySink", "FrameSource", "ImageSource", "MaskSink", "Overlay", "OverlayStyle", "Pipeline",
    "RetryingSource", "RunSummary", "UnreadableFrame", "VideoFileSink",
    "infer_video", "open_source",
]
