"""One call from a model and a source spec to a finished run: what ``toolkit infer`` and ``toolkit demo`` use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from toolkit.backend.base import BaseRunner
from toolkit.core import defaults
from toolkit.errors import ToolkitError
from toolkit.files import refuse_output_over_input
from toolkit.video.overlay import Overlay, OverlayStyle
from toolkit.video.pipeline import Pipeline, RunSummary
from toolkit.video.sinks import DisplaySink, MaskSink, Sink, VideoFileSink
from toolkit.video.sources import FrameSource, ImageSource, open_source


def infer_video(runner: BaseRunner, source: str | FrameSource, output: str | Path | None = None,
                masks: str | Path | None = None, show: bool = False, style: OverlayStyle | None = None,
                workers: int = 1, queue_size: int = 4, max_frames: int | None = None, output_fps: float | None = None,
                retries: int = defaults.SOURCE_RETRIES, on_start: Callable[[Pipeline], None] | None = None,
                on_frame: Callable[[int], None] | None = None) -> RunSummary:
    """Run ``source`` through an active ``runner``; sinks are closed (the file complete) however it ends.

    ``on_start`` receives the pipeline before frames flow (to size a progress bar, or to keep a handle
    for ``request_stop``).
    """
    src = open_source(source, retries=retries) if isinstance(source, str | int) else source
    sinks: list[Sink] = []
    try:
        meta = runner.meta
        if meta is None:
            raise ToolkitError(f"model '{runner.name}' carries no label space (class names, palette, mean/std); "
                               "use a checkpoint or an ONNX file exported by the toolkit")
        style = style or OverlayStyle()
        overlay = Overlay(meta.dataset.class_names, meta.dataset.palette, style)
        if output is not None:
            sinks.append(VideoFileSink(output, fps=output_fps or src.fps or 30.0))
        if masks is not None:
            mask_sink = MaskSink(masks, name_for=src.frame_name)
            if isinstance(src, ImageSource):  # masks/a.png must not be the input frames/a.png itself
                for i, path in enumerate(src.paths):
                    refuse_output_over_input(mask_sink.mask_path(i), [path], "--masks")
            sinks.append(mask_sink)
        if show:
            sinks.append(DisplaySink())
        pipe = Pipeline(src, runner, overlay, sinks, queue_size=queue_size, workers=workers,
                        max_frames=max_frames, on_frame=on_frame, hud=style.hud)
        if on_start is not None:
            on_start(pipe)
        summary = pipe.run()
        summary.outputs = [str(s.path) for s in sinks if isinstance(s, VideoFileSink) and s.written] + \
                          [str(s.folder) for s in sinks if isinstance(s, MaskSink) and s.frames]
        return summary
    finally:
        src.close()
