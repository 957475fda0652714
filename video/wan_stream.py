"""Streaming encode and decode for Wan 2.1's causal video VAE: latent frames in, video frames out, the
decoder's per-layer causal feature cache kept between calls, so decoding block by block gives the
frames of decoding the whole clip at once.

Plain torch. ``decoder`` is any module with Wan's cache calling convention,
``decoder(x, feat_cache=cache_list, feat_idx=[0])``. ComfyUI has had two generations of it
(``nodes/compat.py`` says which release has which):

* up to early 2026: the call returns a tensor, and each causal convolution caches the last two
  frames it saw, taking one from its previous cache entry when a call brings a single frame;
* since the spring-2026 refactor: the call returns a list of chunks, and each convolution caches
  only the frames of the current call (ComfyUI's own decode feeds the first latent frame alone and
  then pairs, so its caches are always full).

This module decodes one latent frame per call (the first frame of a video comes out at once, as
the block-causal sampler wants) and, after every call, completes a one-frame cache entry with the
last frame of the entry it replaced: the first generation's own rule, a no-op there, and what
keeps the second generation exact for one-frame calls.
"""

from __future__ import annotations

import torch


def _as_tensor(out) -> torch.Tensor:
    return torch.cat(list(out), dim=2) if isinstance(out, (list, tuple)) else out


class StreamingDecoder:
    """``decode(x)`` with x [B, C, F, h, w] (after the VAE's own pre-decode convolution) returns
    the decoder's output for those frames [B, 3, T, H, W]; call it block after block."""

    def __init__(self, decoder: torch.nn.Module, cache_layers: int):
        self.decoder = decoder
        self.cache: list | None = [None] * cache_layers

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            raise RuntimeError("this stream was closed")
        outs = []
        for i in range(x.shape[2]):
            before = list(self.cache)
            outs.append(_as_tensor(self.decoder(x[:, :, i:i + 1], feat_cache=self.cache, feat_idx=[0])))
            for j, (old, new) in enumerate(zip(before, self.cache)):
                if isinstance(new, torch.Tensor) and isinstance(old, torch.Tensor) and new.shape[2] < 2:
                    self.cache[j] = torch.cat([old[:, :, -1:].to(new.device), new], dim=2)
        return torch.cat(outs, dim=2)

    def close(self):
        self.cache = None


class StreamingEncoder:
    """The encoder side: ``encode(frames)`` with frames [B, 3, T, H, W] in -1..1, any number at a
    time, returns the latent frames (before the VAE's own 1x1x1 ``conv1`` and the mean/log-var
    split, which the caller applies; both act frame by frame) that those frames complete. Frames
    are fed as the Wan VAE's own encode feeds them, the first alone and then four at a time, with
    the encoder's causal cache kept between calls, so encoding a clip piece by piece gives the
    latents of encoding it whole, in memory flat in its length."""

    def __init__(self, encoder: torch.nn.Module, cache_layers: int):
        self.encoder = encoder
        self.cache: list | None = [None] * cache_layers
        self.pending: torch.Tensor | None = None
        self.started = False

    def encode(self, frames: torch.Tensor) -> torch.Tensor | None:
        if self.cache is None:
            raise RuntimeError("this stream was closed")
        x = frames if self.pending is None else torch.cat([self.pending, frames], dim=2)
        outs = []
        while x.shape[2] >= (4 if self.started else 1):
            n = 4 if self.started else 1
            outs.append(_as_tensor(self.encoder(x[:, :, :n], feat_cache=self.cache, feat_idx=[0])))
            x, self.started = x[:, :, n:], True
        self.pending = x if x.shape[2] else None
        return torch.cat(outs, dim=2) if outs else None

    def close(self):
        self.cache = self.pending = None
