"""What the demo's videos are, measured on the frames: the shape's path, its colour and size, seams at
block boundaries, drift over a long run, how soon a prompt switch takes. Plain torch; used by the
demo's quality tests (tests/test_demo_quality.py) and its table (benchmarks/demo_quality.py).

Frames are read per latent frame (the demo's codec gives the 1 or 4 frames of a latent frame one
picture), so a step is one latent frame: 8 pixels at the world's speed (2 px a frame, 4 frames).
"""

from __future__ import annotations

import math

import torch

from . import world


def per_latent_frame(video: torch.Tensor) -> torch.Tensor:
    """The last frame of each latent frame's group: [T', H, W, 3]."""
    return video[[world.frames_of_latent(k)[-1] for k in range(world.latent_frames(video.shape[0]))]]


def path_steps(video: torch.Tensor) -> torch.Tensor:
    """[T' - 1, 2] the shape's motion (x, y) from one latent frame to the next, across the edges."""
    return world.steps(world.centroids(per_latent_frame(video)))


def seams(video: torch.Tensor, latent_per_block: int = 3, truth: torch.Tensor | None = None) -> dict:
    """Motion at block boundaries against motion inside blocks: the size of each step (pixels) at a boundary
    and inside a block, and, given the ``truth`` (the world's own video of the same prompt), how far each
    step is from the truth's (``boundary_error``, ``inside_error``)."""
    steps = path_steps(video)
    boundary = [i for i in range(steps.shape[0]) if (i + 1) % latent_per_block == 0]
    inside = [i for i in range(steps.shape[0]) if (i + 1) % latent_per_block != 0]
    out = {"steps": steps, "boundary": steps[boundary].norm(dim=1), "inside": steps[inside].norm(dim=1)}
    if truth is not None:
        err = (steps - path_steps(truth)).norm(dim=1)
        out.update(boundary_error=err[boundary], inside_error=err[inside])
    return out


def blob_size(video: torch.Tensor) -> torch.Tensor:
    """[T] the shape's area in pixels (pixels well off the ground)."""
    return (world.blob_mask(video) > 0.3).float().sum((1, 2))


def shape_area(video: torch.Tensor, color: str) -> torch.Tensor:
    """[T] the shape's area in pixels, counted by coverage: each pixel's share of the way from the ground to
    ``color`` on that colour's strongest channel. Linear in the pixels, so the codec's patch and frame means
    keep it: a square 576 px, a circle pi/4 of that (452 px), however the patches cut them."""
    rgb = torch.tensor(world.COLORS[color])
    c = int((rgb - world.BACKGROUND).abs().argmax())
    cover = (video[..., c] - world.BACKGROUND) / (float(rgb[c]) - world.BACKGROUND)
    return cover.clamp(0, 1).sum((1, 2))


SHAPE_AREAS = {"square": world.BLOB ** 2, "circle": math.pi / 4 * world.BLOB ** 2}


def nearest_shape(area: float) -> str:
    return min(SHAPE_AREAS, key=lambda s: abs(SHAPE_AREAS[s] - area))


def color_error(video: torch.Tensor, color: str) -> torch.Tensor:
    """[T] distance of the shape's mean colour from the prompt's colour (0..sqrt 3)."""
    return (world.blob_color(video) - torch.tensor(world.COLORS[color])).norm(dim=1)


def colors_by_block(video: torch.Tensor, latent_per_block: int = 3) -> list[str]:
    """The nearest named colour of the shape in each block (its last latent frame)."""
    lat = per_latent_frame(video)
    rgb = world.blob_color(lat)
    return [world.nearest_color(rgb[min(b * latent_per_block + latent_per_block - 1, len(rgb) - 1)])
            for b in range((len(rgb) + latent_per_block - 1) // latent_per_block)]
