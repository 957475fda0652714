"""Incremental H.264 mp4 writing through imageio-ffmpeg (plain Python + torch).

Frames go to ffmpeg as they are made, so a long video never sits in memory whole. The index
(moov atom) is moved to the front when the file is finished (``-movflags +faststart``), so a
browser can start playing it before the download ends.
"""

from __future__ import annotations

import torch


class Mp4Writer:
    """``write(frames)`` with frames [N, H, W, 3] floats in 0..1; ``close()`` finishes the file."""

    def __init__(self, path: str, width: int, height: int, fps: float = 16.0, crf: int = 19):
        try:
            import imageio_ffmpeg
        except ImportError:
            raise RuntimeError("imageio-ffmpeg is not installed: pip install imageio-ffmpeg") from None
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs even width and height, got {width}x{height}")
        self.path, self.width, self.height, self.frames = path, width, height, 0
        self._gen = imageio_ffmpeg.write_frames(path, (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                                pix_fmt_out="yuv420p", quality=None,
                                                output_params=["-crf", str(crf), "-movflags", "+faststart"],
                                                macro_block_size=1)
        self._gen.send(None)

    def write(self, frames: torch.Tensor):
        if frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"frames of {tuple(frames.shape[1:])} do not fit a {self.width}x{self.height} video")
        data = (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        for f in data:
            self._gen.send(f.tobytes())
            self.frames += 1

    def close(self):
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
