"""The block loop never waits on the host: with the model on the 'meta' device (shapes only, so every
copy between the host and the device shows as one), a dispatch mode counts, per block in the steady
state, the transfers, the scalar reads and the allocations as large as the KV cache. On a GPU each of
those would be a host sync (a blocking copy, an .item()) or memory traffic the in-place cache avoids."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from test_causal_unit import tiny_model
from test_steering_unit import H, SIGMAS, W
from tempo_pack.samplers import causal

aten = torch.ops.aten
SCALAR_READS = {aten._local_scalar_dense.default, aten.item.default}
# what joining the cache makes (the attention kernel's own work, which differs by device, is not counted)
COPIES = {aten.cat.default, aten.clone.default, aten.index_select.default, aten._to_copy.default,
          aten.stack.default, aten.contiguous.default}


class Watch(TorchDispatchMode):
    """Counts what crosses between the host and the device, scalar reads, and copies (cat, clone,
    index_select...) of at least ``big`` elements, per block (``mark`` starts the next one)."""

    def __init__(self, big: int):
        super().__init__()
        self.big, self.blocks = big, [[]]

    def mark(self):
        self.blocks.append([])

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        log = self.blocks[-1]
        if func in SCALAR_READS:
            log.append(("scalar read", str(func)))
        elif func is aten._to_copy.default and isinstance(args[0], torch.Tensor):
            src, dst = args[0].device, kwargs.get("device") or args[0].device
            if src.type != torch.device(dst).type:
                log.append(("transfer", f"{src.type}->{torch.device(dst).type}",
                            "non-blocking" if kwargs.get("non_blocking") else "blocking"))
        elif func is aten.copy_.default and args[0].device.type != args[1].device.type:
            log.append(("transfer", f"{args[1].device.type}->{args[0].device.type}",
                        "non-blocking" if len(args) > 2 and args[2] else "blocking"))
        if func in COPIES and isinstance(out, torch.Tensor) and out.numel() >= self.big:
            log.append(("large copy", str(func), tuple(out.shape)))
        return out


@pytest.mark.parametrize("window", [3, None])
def test_a_steady_block_makes_one_non_blocking_transfer_and_reads_no_scalar(window):
    """Per block after the first: one transfer (the block's noise, staged at once and copied without
    blocking), no scalar read, no blocking copy, and (in-place cache, a fixed window) no copy as large
    as a layer's cache made (the joined cache makes one per layer and pass). The full cache (window None) grows, so only the transfers are counted there."""
    m = tiny_model(3).to("meta")
    blocks, fpb = 10, 1
    spec = causal.VideoSpec(H, W, blocks * fpb, fpb, SIGMAS, 5, 1, window, channels=4)
    session = causal.CausalSession(m.causal, spec, torch.device("meta"), speed=causal.Speed())
    cond = torch.randn(1, 7, 32)
    tokens = (H // 2) * (W // 2)
    layer_cache = (1 + (window or 0) + fpb) * tokens * m.causal.dim  # one layer's keys, sinks + window + block
    watch = Watch(layer_cache if window else 1 << 62)
    with watch:
        for kind, _ in session.run(cond):
            watch.mark()
    steady = watch.blocks[5:blocks]  # blocks 6..: the cache (1 sink + 3 frames) is full from block 5 on
    if window:  # the check can fail: the joined cache copies the held frames at every layer of every pass
        joined = Watch(layer_cache)
        with joined:
            for _ in causal.CausalSession(m.causal, spec, torch.device("meta"),
                                          speed=causal.Speed(in_place_cache=False)).run(cond):
                joined.mark()
        assert all(any(e[0] == "large copy" for e in log) for log in joined.blocks[5:blocks])
    assert len(steady) == blocks - 5
    for i, log in enumerate(steady, 6):
        transfers = [e for e in log if e[0] == "transfer"]
        assert transfers == [("transfer", "cpu->meta", "non-blocking")], (i, log)
        assert not [e for e in log if e[0] == "scalar read"], (i, log)
        assert not [e for e in log if e[0] == "large copy"], (i, log)


def test_staged_noise_is_the_noise_the_blocks_always_had():
    """One transfer per block changes nothing: the start noise and each step's re-noise are drawn from the
    same generators in the same order as before (a video made today equals one made before the change)."""
    shape = (1, 4, 1, H, W)
    staged = causal.staged_block_noise(shape, 5, 3, 4, "cpu", torch.float32)
    assert torch.equal(staged[0], causal.block_noise(shape, 5, 3))
    renoise = causal.block_generator(5, 3, kind=1)
    for i in range(1, 4):
        assert torch.equal(staged[i], torch.randn(shape, generator=renoise, dtype=torch.float32))


VIEWS = {aten.view.default, aten.unsqueeze.default, aten.t.default, aten.transpose.int, aten.select.int,
         aten.unbind.int, aten.view_as_complex.default, aten.view_as_real.default, aten._unsafe_view.default,
         aten.expand.default, aten.slice.Tensor, aten.detach.default}


def kernels(fn, *args) -> list[str]:
    """The ops ``fn`` dispatches that compute (views left out): on a GPU, one kernel launch each in eager."""
    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, a=(), k=None):
            if func not in VIEWS:
                self.ops.append(str(func).replace("aten.", "").split(".")[0])
            return func(*a, **(k or {}))

    with Count() as c:
        fn(*args)
    return c.ops


@pytest.mark.parametrize("dtype,expected", [(torch.float32, ["mul"]), (torch.bfloat16, ["_to_copy", "mul", "_to_copy"])])
def test_rope_is_one_complex_product_not_ten_kernels(dtype, expected):
    """Eager passes spent about a fifth of their time on element-wise work; RoPE written out as pairs took
    ten kernels for each of q and k. Now: one complex multiply (and the casts bf16 needs)."""
    from tempo_pack.models.causal_wan import apply_rope, rope_freqs

    x = torch.randn(1, 2 * 12, 2, 32, dtype=dtype)
    freqs = rope_freqs(torch.arange(2), 3, 4, 32, "cpu")
    assert kernels(apply_rope, x, freqs) == expected


def test_modulation_and_gated_residual_are_one_fused_multiply_add_each():
    from tempo_pack.models.causal_wan import _gated_add, _modulate

    h, val = torch.randn(1, 12, 8), torch.randn(1, 12, 8)
    shift, scale = torch.randn(1, 3, 8), torch.randn(1, 3, 8)
    assert kernels(_modulate, val, shift, scale, 3) == ["add", "addcmul"]  # 1 + scale (per frame, small), then one pass
    assert kernels(_gated_add, h, val, scale, 3) == ["addcmul"]
    torch.testing.assert_close(_gated_add(h, val, scale, 3),
                               h + (val.view(1, 3, 4, 8) * scale[:, :, None]).view(1, 12, 8))


def test_each_model_and_block_size_compiles_its_own_code():
    """Dynamo keeps compiled graphs, and its limit of 8 recompiles, per code object: each (width, heads,
    block frames, dtype) gets a copy of the layer code of its own, so one model's recompiles never push
    another's layers back to eager; the copy computes the same."""
    from tempo_pack.models import causal_wan as cw

    a = cw.compiled_layer_parts("layers", (64, 2, 3, "torch.float32"))
    b = cw.compiled_layer_parts("layers", (64, 2, 1, "torch.float32"))
    assert a is cw.compiled_layer_parts("layers", (64, 2, 3, "torch.float32"))  # one per key, kept
    assert a is not b
    copy = cw._own_code(cw.layer_before_attention, "t")
    assert copy.__code__ is not cw.layer_before_attention.__code__ and copy.__code__.co_code == \
        cw.layer_before_attention.__code__.co_code
    m = tiny_model(2)
    r = m.causal
    x = torch.randn(1, 4, 3, 4, 6)
    tokens, grid = r.patchify(x)
    _, e0 = r.time_embed(torch.full((1, 3), 500.0))
    freqs = cw.rope_block(0, 3, grid[1], grid[2], r.head_dim, "cpu")
    with torch.no_grad():
        for want, got in zip(cw.layer_before_attention(r.net.blocks[0], tokens, e0, freqs, 3, r.num_heads),
                             copy(r.net.blocks[0], tokens, e0, freqs, 3, r.num_heads)):
            for w, g in zip(want if isinstance(want, tuple) else [want], got if isinstance(got, tuple) else [got]):
                assert torch.equal(w, g)
