"""The demo's world: coloured shapes gliding over a dark ground, small enough to learn on two CPU cores.

Plain torch. A prompt names a colour, a shape and a direction ("red square moving right"); every
shape starts at the centre and moves 2 pixels a frame, wrapping round the edges (so a video can run
as long as one likes and stay on screen). A timeline changes the prompt at given frames: the shape
goes on from where it is, in its new colour, form and direction. 128x96 at 16 fps, as the demo's
causal workflows make them.

Also the demo's latent codec (what the demo's Wan VAE and TAEHV files compute, see
factory/demo_codec.py): a latent holds each 8x8 patch's mean colour (in the VAE's -1..1, times GAIN)
over the frames its latent frame covers (the first frame alone, then four at a time, as the Wan VAE's
time compression), in channels 0..2; the other 13 channels are 0.
"""

from __future__ import annotations

import itertools
import math
import re

import torch

WIDTH, HEIGHT, FPS = 128, 96, 16
BLOB = 24          # square side / circle diameter, pixels
SPEED = 2          # pixels per frame
BACKGROUND = 0.12  # the ground's grey
COLORS = {"red": (0.95, 0.12, 0.1), "green": (0.1, 0.8, 0.25), "blue": (0.15, 0.35, 1.0),
          "yellow": (0.95, 0.85, 0.1)}
SHAPES = ("square", "circle")
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}
LATENT_CHANNELS, PATCH, TIME = 16, 8, 4
# The codec's latent holds 4x the colour (a power of 2, exact in any float format), so that in the diffusion
# model's space (ComfyUI's Wan 2.1 latent format: (latent - mean) / std, std 1.1..3.3) the world spans about
# -2..2 as real Wan latents do, not -0.5..0.5 under noise of std 1.
GAIN = 4.0


def prompt_of(color: str, shape: str, direction: str) -> str:
    return f"{color} {shape} moving {direction}"


PROMPTS = [prompt_of(c, s, d) for c, s, d in itertools.product(COLORS, SHAPES, DIRECTIONS)]


def parse(prompt: str) -> tuple[str, str, str]:
    """(colour, shape, direction) of a prompt in the demo's words."""
    words = re.findall(r"[a-z]+", prompt.lower())
    found = [next((w for w in words if w in vocab), None) for vocab in (COLORS, SHAPES, DIRECTIONS)]
    if None in found:
        raise ValueError(f"'{prompt}' is not in the demo's words: a colour ({', '.join(COLORS)}), a shape "
                         f"({', '.join(SHAPES)}) and a direction ({', '.join(DIRECTIONS)})")
    return found[0], found[1], found[2]


def path(timeline: list[tuple[int, str]], frames: int, start=(WIDTH / 2, HEIGHT / 2)):
    """[(x, y, prompt)] per frame: the shape's centre (not yet wrapped) and the prompt playing."""
    out, (x, y) = [], start
    switches = dict(timeline)
    playing = switches[0]
    for f in range(frames):
        playing = switches.get(f, playing)
        out.append((x, y, playing))
        dx, dy = DIRECTIONS[parse(playing)[2]]
        x, y = x + SPEED * dx, y + SPEED * dy
    return out


def render(timeline: list[tuple[int, str]], frames: int, start=(WIDTH / 2, HEIGHT / 2), only=None) -> torch.Tensor:
    """Frames [T, H, W, 3] in 0..1 for ``timeline`` ([(frame, prompt)], the first at frame 0); ``only``: the
    frame indices to draw, in order (the shape's path is followed through the others)."""
    yy, xx = torch.meshgrid(torch.arange(HEIGHT) + 0.5, torch.arange(WIDTH) + 0.5, indexing="ij")
    track = path(timeline, frames, start)
    wanted = list(range(frames)) if only is None else list(only)
    video = torch.full((len(wanted), HEIGHT, WIDTH, 3), BACKGROUND)
    for f, (x, y, prompt) in enumerate(track[i] for i in wanted):
        color, shape, _ = parse(prompt)
        # distance on the torus: the shape wraps round the edges
        dx = torch.remainder(xx - x + WIDTH / 2, WIDTH) - WIDTH / 2
        dy = torch.remainder(yy - y + HEIGHT / 2, HEIGHT) - HEIGHT / 2
        if shape == "square":
            inside = ((BLOB / 2 + 0.5 - dx.abs()).clamp(0, 1) * (BLOB / 2 + 0.5 - dy.abs()).clamp(0, 1))
        else:
            inside = (BLOB / 2 + 0.5 - torch.sqrt(dx * dx + dy * dy)).clamp(0, 1)
        rgb = torch.tensor(COLORS[color])
        video[f] = video[f] * (1 - inside[..., None]) + rgb * inside[..., None]
    return video


def latent_frames(frames: int) -> int:
    return 1 + (frames - 1) // TIME


def frames_of_latent(k: int) -> list[int]:
    """The video frames latent frame ``k`` stands for (the first alone, then four at a time)."""
    return [0] if k == 0 else list(range(TIME * k - TIME + 1, TIME * k + 1))


def _pooled(groups: list[torch.Tensor]) -> torch.Tensor:
    """The codec's latent [1, 16, len(groups), h, w] of frame groups ([3, n, H, W] each, in -1..1): each
    group's mean over its frames and 8x8 patches, times GAIN, in channels 0..2."""
    pooled = torch.stack([torch.nn.functional.avg_pool2d(g.mean(1), PATCH) for g in groups], 1)
    out = torch.zeros(1, LATENT_CHANNELS, *pooled.shape[1:])
    out[0, :3] = pooled * GAIN
    return out


def codec_latents(video: torch.Tensor) -> torch.Tensor:
    """The codec's latent [1, 16, 1 + (T - 1) / 4, H / 8, W / 8] of frames [T, H, W, 3] in 0..1."""
    x = video.movedim(-1, 0) * 2 - 1                       # [3, T, H, W] in -1..1
    return _pooled([x[:, frames_of_latent(k)] for k in range(latent_frames(x.shape[1]))])


def latents_at(timeline: list[tuple[int, str]], latent_frames_wanted: list[int]) -> torch.Tensor:
    """The codec latent [1, 16, len(wanted), h, w] of just these latent frames of the video ``timeline``
    makes: only the frames they stand for are drawn (a long video's later blocks, cheaply)."""
    frames = [f for k in latent_frames_wanted for f in frames_of_latent(k)]
    x = render(timeline, max(frames) + 1, only=frames).movedim(-1, 0) * 2 - 1
    groups, i = [], 0
    for k in latent_frames_wanted:
        n = len(frames_of_latent(k))
        groups.append(x[:, i:i + n])
        i += n
    return _pooled(groups)


def codec_frames(latent: torch.Tensor) -> torch.Tensor:
    """The codec's decode: [1, 16, T', h, w] -> frames [1 + 4 (T' - 1), H, W, 3] in 0..1."""
    rgb = latent[0, :3] / GAIN
    reps = [1] + [TIME] * (rgb.shape[1] - 1)
    frames = torch.repeat_interleave(rgb, torch.tensor(reps), dim=1)
    frames = frames.repeat_interleave(PATCH, 2).repeat_interleave(PATCH, 3)
    return ((frames + 1) / 2).clamp(0, 1).movedim(0, -1)


# -- measuring a decoded video ------------------------------------------------------------------------

def blob_mask(video: torch.Tensor, threshold: float = 0.12) -> torch.Tensor:
    """[T, H, W] how far each pixel is from the ground colour (0 on the ground)."""
    return ((video - BACKGROUND).abs().amax(-1) - threshold).clamp(min=0)


def centroids(video: torch.Tensor) -> torch.Tensor:
    """[T, 2] the shape's centre per frame (x, y), on the torus: circular means of the blob's weight."""
    w = blob_mask(video)
    out = []
    for m in w:
        total = m.sum().clamp(min=1e-6)
        xs = []
        for axis, size in ((1, WIDTH), (0, HEIGHT)):
            coord = (torch.arange(size) + 0.5) * 2 * math.pi / size
            profile = m.sum(dim=1 - axis) if axis == 1 else m.sum(dim=1)
            c, s = (profile * torch.cos(coord)).sum() / total, (profile * torch.sin(coord)).sum() / total
            xs.append((math.atan2(float(s), float(c)) % (2 * math.pi)) * size / (2 * math.pi))
        out.append(xs)
    return torch.tensor(out)


def across_edges(d: torch.Tensor) -> torch.Tensor:
    """[..., 2] displacements (x, y) taken the short way round the wrapping world."""
    size = torch.tensor([WIDTH, HEIGHT], dtype=d.dtype)
    return torch.remainder(d + size / 2, size) - size / 2


def steps(centres: torch.Tensor) -> torch.Tensor:
    """[T - 1, 2] frame-to-frame motion, unwrapped across the edges."""
    return across_edges(centres[1:] - centres[:-1])


def blob_color(video: torch.Tensor) -> torch.Tensor:
    """[T, 3] the shape's mean colour per frame (pixels well off the ground)."""
    w = (blob_mask(video) > 0.3).float()
    return (video * w[..., None]).sum((1, 2)) / w.sum((1, 2))[:, None].clamp(min=1)


def nearest_color(rgb: torch.Tensor) -> str:
    return min(COLORS, key=lambda c: float((torch.tensor(COLORS[c]) - rgb).norm()))
