"""The demo's scenes, run through a ComfyUI as an artist would queue them, and measured: the shipped causal
workflows on the demo models (``tempo.py demo``'s files), at the demo world's size, with prompts in its
words; each scene's MP4 is read back and measured with demo/quality.py. Used by the quality tests
(tests/test_demo_quality.py) and the quality table (benchmarks/demo_quality.py).
"""

from __future__ import annotations

import torch

from ..samplers import causal, causal_plan
from . import quality, world
from .run import TAEHV, WORLD_SIZE, run_workflow

T2V = "05 Causal text to video, streamed to mp4.json"
ROLLING = "06 Causal 40-second video, rolling cache.json"
TIMELINE = "09 Causal video that follows a prompt timeline.json"
V2V = "10 Causal video to video restyle.json"
WAN_VAE = "Wan VAE"
LATENT_PER_BLOCK = causal.CAUSAL_PRESETS["Self Forcing"].frames_per_block  # the demo model's, as it was trained
PAD = 2  # pixels between the frames of a strip


def block_start_frame(block: int) -> int:
    """The first video frame of a block, as the sampler places it (samplers/causal_plan.py)."""
    return causal_plan.block_starts("text", LATENT_PER_BLOCK, block + 1)[block]


def length_of(seconds: float) -> int:
    """The shortest sampler length of at least ``seconds`` at the world's 16 fps that is whole blocks."""
    blocks = 1
    while causal_plan.frames_of(blocks * LATENT_PER_BLOCK, "text") < seconds * world.FPS:
        blocks += 1
    return causal_plan.frames_of(blocks * LATENT_PER_BLOCK, "text")


def read_mp4(path: str) -> torch.Tensor:
    """Frames [T, H, W, 3] in 0..1 of an MP4."""
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(path)
    meta = next(reader)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])
    return torch.from_numpy(frames).float() / 255


def frame_strip(rows: list[tuple[str, torch.Tensor]], count: int = 8, every: int | None = 8, scale: float = 1.0,
                label_w: int = 190, font_size: int | None = None, background=(255, 255, 255), ink=(0, 0, 0)):
    """One row of ``count`` frames per video, with a label column, as a PIL image: every ``every``-th
    frame from the first, or (``every`` None) frames spread evenly from the first to the last. Each frame
    is ``scale`` times its size and carries its index."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default() if font_size is None else ImageFont.load_default(size=font_size)
    line_h = font_size + 4 if font_size else 12
    pad = PAD
    h, w = (round(n * scale) for n in rows[0][1].shape[1:3])
    img = Image.new("RGB", (label_w + count * (w + pad), len(rows) * (h + pad)), background)
    draw = ImageDraw.Draw(img)
    for r, (label, video) in enumerate(rows):
        y = r * (h + pad)
        for line, text in enumerate(label.split("\n")):
            draw.text((4, y + 4 + line_h * line), text, fill=ink, font=font)
        n = video.shape[0]
        picked = (range(0, n, every)[:count] if every else
                  sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(min(count, n))}))
        for c, i in enumerate(picked):
            frame = Image.fromarray((video[i].clamp(0, 1) * 255).byte().numpy())
            if scale != 1.0:
                frame = frame.resize((w, h), Image.LANCZOS)
            img.paste(frame, (label_w + c * (w + pad), y))
            draw.text((label_w + c * (w + pad) + 3, y + h - line_h), str(i), fill=(255, 255, 255), font=font)
    return img


def run(server, workflow: str, sets: dict, out_dir: str) -> torch.Tensor:
    """Queue a shipped workflow with ``sets`` (NODE.INPUT overrides) as the demo runs it (demo/run.py
    run_workflow) and return its MP4's frames."""
    (mp4,) = [f for f in run_workflow(server, workflow, sets, out_dir, log=lambda m: None, progress=False)
              if f.endswith(".mp4")]
    return read_mp4(mp4)


def text_to_video(server, out_dir: str, prompt: str = "red square moving right", length: int = 33,
                  decoder: str = TAEHV, seed: int = 42) -> torch.Tensor:
    return run(server, T2V, {**WORLD_SIZE, "TempoCausalVideoSampler.length": length,
                             "TempoCausalVideoSampler.seed": seed, "CLIPTextEncode.text": prompt,
                             "TempoCausalVideoSaveMP4.decoder": decoder}, out_dir)


def rolling(server, out_dir: str, prompt: str = "red square moving right", seconds: float = 30.0) -> torch.Tensor:
    """The rolling-cache workflow (its preset window: 3 sink frames + the last 18) for ``seconds``."""
    return run(server, ROLLING, {**WORLD_SIZE, "TempoCausalVideoSampler.length": length_of(seconds),
                                 "CLIPTextEncode.text": prompt, "TempoCausalVideoSaveMP4.decoder": TAEHV}, out_dir)


def timeline(server, out_dir: str, first: str, then: str, block: int, length: int = 57) -> torch.Tensor:
    """The timeline workflow: ``first`` from frame 0, ``then`` from the first frame of ``block``."""
    text = f"0: {first}\n{block_start_frame(block)}: {then}"
    return run(server, TIMELINE, {**WORLD_SIZE, "TempoCausalVideoSampler.length": length,
                                  "TempoPromptTimeline.text": text, "TempoPromptTimeline.units": "frames",
                                  "TempoCausalVideoSaveMP4.decoder": TAEHV}, out_dir)


def video_to_video(server, out_dir: str, prompt: str, strength: float = 0.5, length: int = 33) -> torch.Tensor:
    """The restyle workflow on the example clip (factory.checkpoints.EXAMPLE_VIDEO_PROMPT)."""
    return run(server, V2V, {**WORLD_SIZE, "ImageScale.width": world.WIDTH, "ImageScale.height": world.HEIGHT,
                             "TempoCausalVideoSampler.length": length, "TempoCausalVideoSampler.strength": strength,
                             "CLIPTextEncode.text": prompt, "TempoCausalVideoSaveMP4.decoder": TAEHV}, out_dir)


# -- the figures ----------------------------------------------------------------------------------------

def truth(timeline: list[tuple[int, str]], frames: int) -> torch.Tensor:
    """The world's own video of a timeline, as the demo codec gives it (each latent frame's mean): the ruler."""
    return world.codec_frames(world.codec_latents(world.render(timeline, frames)))


def motion(video: torch.Tensor, prompt: str) -> dict:
    """The shape's motion against the world's: mean step a latent frame (x, y; the world moves 8 px), and the
    largest step error (pixels, against the world's own step) at block seams and inside blocks."""
    s = quality.seams(video, LATENT_PER_BLOCK, truth([(0, prompt)], video.shape[0]))
    return {"step": s["steps"][1:].mean(0).tolist(), "seam_error": float(s["boundary_error"].max()),
            "inside_error": float(s["inside_error"].max()), "seam_step": float(s["boundary"].max()),
            "inside_step": float(s["inside"].max())}


def path_distance(video: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """[T'] the distance (pixels, across the edges) between two videos' shapes, latent frame by latent frame."""
    a = world.centroids(quality.per_latent_frame(video))
    b = world.centroids(quality.per_latent_frame(other))
    return world.across_edges(a - b).norm(dim=1)


def drift(video: torch.Tensor, color: str, seconds: float = 2.0) -> dict:
    """The shape's colour error, area and motion over the first and the last ``seconds`` of a video."""
    lat = quality.per_latent_frame(video)[1:]
    n = max(1, int(seconds * world.FPS / world.TIME))
    err, area = quality.color_error(lat, color), quality.shape_area(lat, color)
    return {"color_start": float(err[:n].mean()), "color_end": float(err[-n:].mean()),
            "area_start": float(area[:n].mean()), "area_end": float(area[-n:].mean()),
            "step_end": quality.path_steps(video)[-n:].mean(0).tolist()}


def switch_latency(video: torch.Tensor, color: str, block: int) -> int | None:
    """Blocks from ``block`` (where the switch was asked) to the first block whose shape is ``color``."""
    for b, c in enumerate(quality.colors_by_block(video, LATENT_PER_BLOCK)):
        if b >= block and c == color:
            return b - block
    return None
