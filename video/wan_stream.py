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
    """The encoder side: ``encode(frames, final)`` with frames [B, 3, T, H, W] in -1..1, any number at
    a time, returns the latent frames (before the VAE's own 1x1x1 ``conv1`` and the mean/log-var
    split, which the caller applies; both act frame by frame) that those frames complete, or None.
    Frames are fed as the Wan VAE's own encode feeds them, the first alone and then ``chunk`` at a
    time, with the encoder's causal cache kept between calls, so encoding a clip piece by piece gives
    the latents of encoding it whole, in memory flat in its length.

    Two generations (``nodes/compat.py`` says which release has which):

    * up to early 2026: chunks of 4 frames, each completing one latent frame;
    * from ComfyUI 0.18 (PR #13014): chunks of 2, and each time-downsampling layer holds a lone
      output frame back until the next call brings another (a call may return nothing); the last
      call must pass ``final=True`` to let the held frames out (``takes_final``).

    So the caller says which frames are the clip's last (``final=True``, with at least one frame);
    frames past the last whole latent frame (1 + 4k frames) are dropped, as the VAE's encode drops them."""

    def __init__(self, encoder: torch.nn.Module, cache_layers: int, chunk: int = 4, takes_final: bool = False):
        self.encoder, self.chunk, self.takes_final = encoder, chunk, takes_final
        self.cache: list | None = [None] * cache_layers
        self.pending: torch.Tensor | None = None
        self.started = False

    def encode(self, frames: torch.Tensor, final: bool = False) -> torch.Tensor | None:
        if self.cache is None:
            raise RuntimeError("this stream was closed")
        x = frames if self.pending is None else torch.cat([self.pending, frames], dim=2)
        pieces = []
        if not self.started and x.shape[2]:
            pieces.append(x[:, :, :1])
            x, self.started = x[:, :, 1:], True
        whole = x.shape[2] // 4 * 4  # after the first frame, 4 frames make a latent frame
        if self.takes_final and not final:
            whole = max(whole - 4, 0)  # the last whole group waits: the clip's last call must say final
        pieces += list(x[:, :, :whole].split(self.chunk, dim=2)) if whole else []
        self.pending = None if final or whole == x.shape[2] else x[:, :, whole:]
        outs = []
        for i, piece in enumerate(pieces):
            extra = {"final": final and i == len(pieces) - 1} if self.takes_final else {}
            out = self.encoder(piece, feat_cache=self.cache, feat_idx=[0], **extra)
            if out is not None:
                outs.append(_as_tensor(out))
        return torch.cat(outs, dim=2) if outs else None

    def close(self):
        self.cache = self.pending = None
