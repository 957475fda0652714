"""KV caches for causal video: fixed-size rolling self-attention cache with sink frames.

Plain torch. Memory is allocated once, at ``(sink + window) * tokens_per_frame`` tokens per
layer, so it stays the same however long the video runs. Keys are stored after RoPE, at
their absolute frame positions; evicting a frame never re-rotates the others.
"""

from __future__ import annotations

import torch


class RollingKVCache:
    """Per layer keys/values of the frames generated so far, as Self Forcing keeps them.

    Holds at most ``sink_frames + window_frames`` frames: the first ``sink_frames`` of the
    video stay for good; after them, the most recent ``window_frames``. A pass with
    ``write=True`` first stages every layer's new keys/values (the frames being written must
    not see themselves twice) and :meth:`commit` then stores them, evicting the oldest
    non-sink frames that no longer fit.
    """

    def __init__(self, num_layers: int, batch: int, heads: int, head_dim: int, tokens_per_frame: int,
                 sink_frames: int, window_frames: int, device=None, dtype=torch.float32):
        if window_frames < 1:
            raise ValueError("the cache window must hold at least one frame")
        self.tpf, self.sink, self.window = tokens_per_frame, sink_frames, window_frames
        self.capacity_frames = sink_frames + window_frames
        shape = (num_layers, batch, self.capacity_frames * tokens_per_frame, heads, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.frames: list[int] = []      # absolute indices of the stored frames, in order
        self._staged: dict[int, tuple] = {}

    @staticmethod
    def bytes_needed(num_layers, batch, heads, head_dim, tokens_per_frame, frames, dtype=torch.bfloat16) -> int:
        return 2 * num_layers * batch * frames * tokens_per_frame * heads * head_dim * torch.empty((), dtype=dtype).element_size()

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()

    def read(self, layer: int):
        n = len(self.frames) * self.tpf
        if n == 0:
            return None, None
        return self.k[layer, :, :n], self.v[layer, :, :n]

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self._staged[layer] = (k, v)

    def commit(self, start_frame: int, n_frames: int):
        """Store the staged frames ``start_frame .. start_frame + n_frames - 1``."""
        if len(self._staged) != self.k.shape[0]:
            raise RuntimeError("commit without keys/values staged for every layer")
        new = list(range(start_frame, start_frame + n_frames))
        if n_frames > self.capacity_frames:
            raise ValueError(f"a block of {n_frames} frames does not fit a cache of {self.capacity_frames}")
        keep = self.frames
        overflow = len(keep) + n_frames - self.capacity_frames
        if overflow > 0:  # drop the oldest frames after the sinks; shift the rest left in place
            s = min(self.sink, len(keep))
            drop = overflow
            tail = len(keep) - s - drop
            if tail > 0:
                src = slice((s + drop) * self.tpf, (s + drop + tail) * self.tpf)
                dst = slice(s * self.tpf, (s + tail) * self.tpf)
                self.k[:, :, dst] = self.k[:, :, src].clone()
                self.v[:, :, dst] = self.v[:, :, src].clone()
            keep = keep[:s] + keep[s + drop:]
        at = len(keep) * self.tpf
        for layer, (k, v) in self._staged.items():
            self.k[layer, :, at:at + n_frames * self.tpf] = k.to(self.k.dtype)
            self.v[layer, :, at:at + n_frames * self.tpf] = v.to(self.v.dtype)
        self._staged.clear()
        self.frames = keep + new

    def clear(self):
        self.frames, self._staged = [], {}
        self.k = self.v = None
