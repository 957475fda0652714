"""Incremental H.264 mp4 writing through the ffmpeg that imageio-ffmpeg ships (plain Python + torch).

Frames go to ffmpeg as they are made, so a long video never sits in memory whole. The index
(moov atom) is moved to the front when the file is finished (``-movflags +faststart``), so a
browser can start playing it before the download ends. ``metadata`` (such as ComfyUI's "prompt"
and "workflow") is written as mp4 metadata tags, the way ComfyUI's own Save Video writes it
(``use_metadata_tags``), so the editor can load the workflow back from the file.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import torch


def ffmetadata(metadata: dict[str, str]) -> str:
    """ffmpeg's metadata file format: '=', ';', '#', '\\' and newlines escaped with a backslash."""
    def esc(text: str) -> str:
        for c in "\\=;#\n":
            text = text.replace(c, "\\" + c)
        return text

    return ";FFMETADATA1\n" + "".join(f"{esc(k)}={esc(v)}\n" for k, v in metadata.items())


class Mp4Writer:
    """``write(frames)`` with frames [N, H, W, 3] floats in 0..1; ``close()`` finishes the file."""

    def __init__(self, path: str, width: int, height: int, fps: float = 16.0, crf: int = 19,
                 metadata: dict[str, str] | None = None):
        try:
            import imageio_ffmpeg
        except ImportError:
            raise RuntimeError("imageio-ffmpeg is not installed: pip install imageio-ffmpeg") from None
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs even width and height, got {width}x{height}")
        self.path, self.width, self.height, self.frames = path, width, height, 0
        self._meta_path = None
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", repr(float(fps)), "-i", "-"]
        if metadata:
            fd, self._meta_path = tempfile.mkstemp(suffix=".ffmetadata.txt")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(ffmetadata(metadata))
            cmd += ["-f", "ffmetadata", "-i", self._meta_path, "-map_metadata", "1"]
        cmd += ["-map", "0:v", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf),
                "-movflags", "+faststart+use_metadata_tags", "-f", "mp4", path]
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)

    def write(self, frames: torch.Tensor):
        if frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"frames of {tuple(frames.shape[1:])} do not fit a {self.width}x{self.height} video")
        data = (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        try:
            for f in data:
                self._proc.stdin.write(f.tobytes())
                self.frames += 1
        except BrokenPipeError:
            self.close()  # raises with ffmpeg's own message

    def close(self):
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        code = proc.wait()
        self._err.seek(0)
        err = self._err.read().decode(errors="replace").strip()
        self._err.close()
        if self._meta_path:
            os.remove(self._meta_path)
        if code != 0:
            raise RuntimeError(f"ffmpeg could not write {self.path} (exit {code}): {err[-500:]}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
