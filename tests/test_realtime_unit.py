"""The real-time options of the causal path, each equal to the plain path on the CPU (plain torch,
fp32): KV-cache writes in place, attention kernels by name, compiled layers, fp8 matrix
multiplication (its drift measured), and decode on a worker overlapped with the next block."""

import threading
import time

import pytest
import torch

from test_causal_unit import TINY, tiny_model
from test_steering_unit import H, SIGMAS, W, prompt, source_blocks
from tempo_pack.errors import TempoError
from tempo_pack.models import attention, fp8
from tempo_pack.models.causal_wan import CausalWanModel
from tempo_pack.models.kv_cache import RollingKVCache
from tempo_pack.samplers import causal
from tempo_pack.video.overlap import BlockWorker, run_in_order


def video(model, blocks, fpb, speed, sink=0, window=None, switches=None, source=None, prefix=None, sigmas=SIGMAS,
          caches=None):
    spec = causal.VideoSpec(H, W, blocks * fpb, fpb, sigmas, 5, sink, window, channels=TINY["in_dim"])
    session = causal.CausalSession(model.causal, spec, next(model.parameters()).device, speed=speed)
    real = RollingKVCache.clear
    if caches is not None:  # note how the cache's passes ran, as the run frees it

        def keep(self):
            caches.append((dict(self.passes), list(self.frames), self.nbytes))
            real(self)
        RollingKVCache.clear = keep
    try:
        out = [x for kind, x in session.run(prompt(1), prefix, switches=switches, source=source)]
    finally:
        RollingKVCache.clear = real
    return torch.cat(out, dim=2)


JOIN = causal.Speed(in_place_cache=False)
IN_PLACE = causal.Speed()

# (frames per block, sink, window, blocks): a full cache; rolling windows that wrap the ring many times
CACHES = [(3, 0, None, 4), (1, 1, 2, 9), (3, 3, 6, 8), (3, 1, 4, 7), (1, 0, 3, 8)]


@pytest.mark.parametrize("fpb,sink,window,blocks", CACHES)
def test_in_place_cache_writes_make_the_same_video_without_joining(fpb, sink, window, blocks):
    model = tiny_model(11)
    joined = video(model, blocks, fpb, JOIN, sink, window)
    seen = []
    in_place = video(model, blocks, fpb, IN_PLACE, sink, window, caches=seen)
    torch.testing.assert_close(in_place, joined, rtol=1e-5, atol=1e-5)
    passes, frames, _ = seen[0]
    assert passes["join"] == 0 and passes["in place"] == blocks * (len(SIGMAS) + 1)
    total = blocks * fpb
    assert frames == (list(range(total)) if window is None else list(range(sink)) + list(range(total - window, total)))


def test_in_place_keeps_the_sinks_and_the_newest_frames_as_the_rule_says():
    model = tiny_model(12)
    seen = []
    video(model, 9, 1, IN_PLACE, 2, 3, caches=seen)
    assert seen[0][1] == [0, 1, 6, 7, 8]


def test_in_place_with_a_start_image_prefix_and_prompt_switches_equals_joining():
    """A 1-frame prefix, then blocks of 3 (the ring's free slots are not one run), and LongLive's
    re-cache at two switches (a pass of a whole window)."""
    model = tiny_model(13)
    prefix = torch.randn(1, TINY["in_dim"], 1, H, W, generator=torch.Generator().manual_seed(2))
    switches = {2: prompt(7), 5: prompt(8)}
    a = video(model, 7, 3, JOIN, 3, 6, switches=switches, prefix=prefix)
    b = video(model, 7, 3, IN_PLACE, 3, 6, switches=switches, prefix=prefix)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_in_place_video_to_video_equals_joining():
    model = tiny_model(14)
    sig = causal.strength_sigmas(SIGMAS, 0.6)
    a = video(model, 5, 3, JOIN, 1, 4, source=iter(source_blocks(5, 3)), sigmas=sig)
    b = video(model, 5, 3, IN_PLACE, 1, 4, source=iter(source_blocks(5, 3)), sigmas=sig)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_in_place_cache_memory_is_flat_in_length_and_counted_before_allocating():
    model = tiny_model(15)
    sizes = []
    for blocks in (4, 16):
        seen = []
        video(model, blocks, 3, IN_PLACE, 1, 4, caches=seen)
        sizes.append(seen[0][2])
    spec = causal.VideoSpec(H, W, 48, 3, SIGMAS, 5, 1, 4, channels=TINY["in_dim"])
    assert sizes[0] == sizes[1] == causal.CausalSession(model.causal, spec).cache_bytes()


def test_a_pass_too_long_for_the_free_slots_joins_and_keeps_the_rule():
    """More frames than the cache has free slots (a long prefix): that pass joins, the next ones run in place."""
    c = RollingKVCache(1, 1, 1, 1, 1, 1, 2, spare_frames=1)
    c.begin(0, 6)
    k = torch.arange(6.).view(1, 6, 1, 1)
    k_all, _ = c.attend_kv(0, k, k, write=True)
    assert k_all.flatten().tolist() == list(range(6))
    c.commit(0, 6)
    assert c.frames == [0, 4, 5] and c.passes == {"in place": 0, "join": 1}
    c.begin(6, 1)
    k_all, _ = c.attend_kv(0, torch.full((1, 1, 1, 1), 6.), torch.zeros(1, 1, 1, 1), write=True)
    assert sorted(k_all.flatten().tolist()) == [0, 4, 5, 6] and c.passes["in place"] == 1
    c.commit(6, 1)
    assert c.frames == [0, 5, 6]


# -- attention kernels -----------------------------------------------------------------------------

def test_every_attention_kernel_that_runs_here_equals_sdpa_math():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 30, 64, generator=g) for _ in range(3))
    names = attention.available("cpu", torch.float32)
    assert "sdpa" in names and "sdpa math" in names
    want = attention.attention_backend("sdpa math", "cpu", torch.float32)(q, k, v)
    for name in names:
        if name in attention.EXACT:
            torch.testing.assert_close(attention.attention_backend(name, "cpu", torch.float32)(q, k, v), want,
                                       rtol=1e-5, atol=1e-5)


def test_a_video_with_a_named_kernel_equals_the_default():
    model = tiny_model(16)
    a = video(model, 3, 3, IN_PLACE, 1, 4)
    b = video(tiny_model(16), 3, 3, causal.Speed(attention="sdpa math"), 1, 4)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_auto_gives_a_shared_runner_back_its_own_kernel():
    """One runner, several sessions (the benchmark's rows): a session of "auto" after one that named a
    kernel runs the runner's own kernel again, and a compile mode is undone the same way."""
    runner = tiny_model(16).causal
    spec = causal.VideoSpec(H, W, 3, 3, SIGMAS, 5, channels=TINY["in_dim"])
    causal.CausalSession(runner, spec, "cpu", speed=causal.Speed(attention="sdpa math", compile="layers"))
    assert runner.attention is not runner.own_attention and runner.compile_mode == "layers"
    causal.CausalSession(runner, spec, "cpu")
    assert runner.attention is runner.own_attention and runner.compile_mode == "off"


def test_an_unknown_or_unavailable_kernel_names_the_fix():
    with pytest.raises(TempoError, match="not one of"):
        attention.attention_backend("flash3", "cpu")
    missing = [n for n in ("xformers", "sage") if n not in attention.available("cpu", torch.float32)]
    for name in missing:
        with pytest.raises(TempoError, match="pick 'sdpa'"):
            attention.attention_backend(name, "cpu", torch.float32)
    if torch.cuda.is_available():
        pytest.skip("the CPU-only kernel refusal is checked on a machine without CUDA")
    with pytest.raises(TempoError, match="cannot run on this cpu"):
        attention.attention_backend("sdpa cudnn", "cpu", torch.float32)


# -- compiled layers -------------------------------------------------------------------------------

def test_compiled_layers_make_the_same_video_and_compile_once():
    """torch.compile (inductor, C++ on the CPU) of each layer's two halves: the same video as eager,
    one graph per half, shared by every layer and by a second video; a prompt switch's re-cache (a
    pass of another length) runs eagerly instead of stalling the stream for a compile."""
    import torch._dynamo

    model = tiny_model(17)
    switch = {2: prompt(7)}
    eager = video(model, 3, 3, IN_PLACE, 1, 4)
    eager_switch = video(model, 4, 3, IN_PLACE, 1, 4, switches=switch)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = video(model, 3, 3, causal.Speed(compile="layers"), 1, 4)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    again = video(model, 4, 3, causal.Speed(compile="layers"), 1, 4, switches=switch)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, eager_switch, rtol=1e-4, atol=1e-5)
    assert graphs == 2  # before / after attention, not one per layer
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs  # nothing compiled for the switch
    model.causal.compile("off")


def test_a_failing_compiler_leaves_the_layers_uncompiled_and_other_errors_through(caplog):
    import torch._dynamo.exc

    from tempo_pack.models.causal_wan import _or_eager

    calls = []

    def broken(*a):
        calls.append("compiled")
        raise torch._dynamo.exc.InternalTorchDynamoError("no C++ compiler")

    run = _or_eager(broken, lambda x: x + 1, "layers")
    assert run(1) == 2 and run(2) == 3 and calls == ["compiled"]  # tried once, then eager for good
    assert "running the layers uncompiled" in caplog.text

    def oom(*a):
        raise RuntimeError("out of memory")
    with pytest.raises(RuntimeError, match="out of memory"):
        _or_eager(oom, lambda x: x, "layers")(1)


def test_an_unknown_compile_mode_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        tiny_model().causal.compile("max")


# -- fp8 matrix multiplication ---------------------------------------------------------------------

@pytest.mark.parametrize("scaling", fp8.SCALINGS)
def test_fp8_linear_is_the_scaled_product_of_its_quantized_factors(scaling):
    """The fp8 layer's output is the dequantized product of its quantized factors (on the CPU the same
    product torch._scaled_mm defines; tests/test_realtime_gpu.py checks the kernel against it)."""
    g = torch.Generator().manual_seed(1)
    lin = torch.nn.Linear(64, 48)
    x = torch.randn(3, 37, 64, generator=g)  # 111 rows: not a multiple of 16, and not padded
    l8 = fp8.fp8_operations(scaling).Linear(64, 48)
    l8.load_state_dict(lin.state_dict())
    y = l8(x)
    assert l8.weight.dtype == torch.float8_e4m3fn and y.shape == (3, 37, 48)
    x8, sx = fp8.quantize(x.reshape(-1, 64), scaling)
    w = l8.weight.float() * l8.w_scale
    want = (x8.float() * sx) @ w.t() + lin.bias
    torch.testing.assert_close(y.reshape(-1, 48), want, rtol=1e-3, atol=1e-3)


def _ops_over(fn, *args):
    """(aten op, output dtype, output elements) of every op ``fn`` runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in (out if isinstance(out, (tuple, list)) else [out]):
                if isinstance(t, torch.Tensor):
                    seen.append((str(func.overloadpacket), t.dtype, t.numel()))
            return out

    with Record():
        fn(*args)
    return seen


@pytest.mark.parametrize("scaling", fp8.SCALINGS)
def test_quantizing_an_activation_makes_no_float32_copy_and_few_passes(scaling):
    """A bf16 activation is read for its maximum and written once to fp8: no op makes an activation-sized
    float32 tensor (the FFN input at 832x480 is 4680 x 8960), and at most three ops touch its size."""
    x = torch.randn(4680, 256, dtype=torch.bfloat16)
    big = [(op, dt) for op, dt, n in _ops_over(fp8.quantize, x, scaling) if n == x.numel()]
    assert torch.float32 not in {dt for _, dt in big}, big
    assert len(big) <= 3, big


def test_a_layer_the_fp8_kernel_cannot_take_multiplies_in_the_activations_dtype():
    """K and N must be multiples of 16 for the kernel: a 40 -> 24 layer keeps fp8 storage and multiplies its
    dequantized weight in the activations' dtype (no _scaled_mm call, no padding)."""
    lin = torch.nn.Linear(40, 24)
    l8 = fp8.fp8_operations("per-row").Linear(40, 24)
    l8.load_state_dict(lin.state_dict())
    x = torch.randn(7, 40)
    ops = {op for op, _, _ in _ops_over(l8, x)}
    assert "aten._scaled_mm" not in ops and "aten.cat" not in ops
    torch.testing.assert_close(l8(x), torch.nn.functional.linear(x, l8.weight.float() * l8.w_scale, lin.bias))
    assert fp8.kernel_fits(64, 48) and not fp8.kernel_fits(40, 24)


def test_per_row_scaling_keeps_the_rows_an_outlier_would_cost_their_precision():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(48, 64, generator=g) * 0.02
    w[0] *= 2e4  # one output channel far larger: per tensor, the others fall to fp8's subnormals
    x = torch.randn(64, 64, generator=g)
    errs = {}
    for scaling in fp8.SCALINGS:
        l8 = fp8.fp8_operations(scaling).Linear(64, 48, bias=False)
        with torch.no_grad():
            l8.weight.copy_(w)
        errs[scaling] = ((l8(x) - x @ w.t())[:, 1:].abs().mean() / (x @ w.t())[:, 1:].abs().mean()).item()
    assert errs["per-row"] < errs["per-tensor"] / 2, errs


def _fp8_model(ops):
    torch.manual_seed(0)
    m = CausalWanModel(**{**TINY, "dim": 128, "ffn_dim": 256}, operations=ops).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in name and name.endswith("weight") else torch.randn_like(p) * 0.1)
    return m


def test_fp8_matmul_video_drift_from_full_precision_is_measured_and_small():
    """The same weights and noise through fp8 matmul: the drift of the latents is reported (max and
    mean abs difference) and stays a small fraction of the video's scale."""
    ref = _fp8_model(None)
    a = video(ref, 3, 3, IN_PLACE, 1, 4)
    drift = {}
    for scaling in fp8.SCALINGS:
        m = _fp8_model(fp8.fp8_operations(scaling))
        m.load_state_dict(ref.state_dict())
        fp8.quantize_model_(m)
        b = video(m, 3, 3, IN_PLACE, 1, 4)
        assert torch.isfinite(b).all()
        drift[scaling] = ((a - b).abs().max().item(), (a - b).abs().mean().item())
    print(f"fp8 matmul drift vs fp32 (max, mean abs), latents of scale {a.abs().mean():.3f}: {drift}")
    for mx, mean in drift.values():
        assert 0 < mean < 0.1 * a.abs().mean()


# -- decode overlapped with the next block -------------------------------------------------------

def test_overlapped_work_runs_in_order_on_another_thread_and_equals_inline():
    model = tiny_model(18)
    spec = causal.VideoSpec(H, W, 12, 3, SIGMAS, 5, 1, 4, channels=TINY["in_dim"])
    done = {True: [], False: []}
    for overlap in (False, True):
        out = done[overlap]
        items = ((kind, x) for kind, x in causal.CausalSession(model.causal, spec).run(prompt(1)))
        n = run_in_order(lambda kind, x: out.append((threading.current_thread().name, x.sum().item())), items, overlap)
        assert n == 4
    assert [v for _, v in done[True]] == [v for _, v in done[False]]
    assert {t for t, _ in done[True]} == {"tempo-block-worker"} and {t for t, _ in done[False]} != {"tempo-block-worker"}


def test_the_worker_overlaps_and_holds_at_most_depth_blocks_waiting():
    started, ahead = [], []

    def slow(i):
        started.append(time.perf_counter())
        time.sleep(0.05)

    def produce():
        for i in range(6):
            ahead.append(i - len(started))  # blocks handed over, not yet started by the worker
            yield (i,)
    t0 = time.perf_counter()
    run_in_order(slow, produce(), overlap=True, depth=1)
    assert len(started) == 6 and max(ahead) <= 2
    assert time.perf_counter() - t0 < 6 * 0.05 + 0.2


def test_a_worker_error_reaches_the_caller_and_the_worker_keeps_the_callers_grad_mode():
    modes = []

    def work(i):
        modes.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        if i == 2:
            raise RuntimeError("decode failed")
    with torch.inference_mode(), pytest.raises(RuntimeError, match="decode failed"):
        run_in_order(work, ((i,) for i in range(10)), overlap=True)
    assert modes and all(m == (False, True) for m in modes) and len(modes) == 3


def test_the_worker_sees_the_callers_context_variables():
    import contextvars

    node = contextvars.ContextVar("node", default=None)
    seen = []
    token = node.set("12")
    try:
        run_in_order(lambda i: seen.append(node.get()), ((i,) for i in range(2)), overlap=True)
    finally:
        node.reset(token)
    assert seen == ["12", "12"]


def test_close_finishes_what_was_handed_over_when_the_caller_stops():
    done = []
    w = BlockWorker(lambda i: (time.sleep(0.02), done.append(i)))
    for i in range(3):
        w.submit(i)
    w.close()
    assert done == [0, 1, 2]


def test_fp8_storage_keeps_8_bit_weights_and_multiplies_in_the_activations_dtype():
    g = torch.Generator().manual_seed(3)
    lin = torch.nn.Linear(64, 48)
    x = torch.randn(5, 64, generator=g)
    l8 = fp8.fp8_operations(fp8.STORAGE).Linear(64, 48)
    l8.load_state_dict(lin.state_dict())
    y = l8(x)
    assert l8.weight.dtype == torch.float8_e4m3fn and l8.w_scale.shape == (48, 1)
    torch.testing.assert_close(y, torch.nn.functional.linear(x, l8.weight.float() * l8.w_scale, lin.bias))
    assert (y - lin(x)).abs().mean() < 0.05 * lin(x).abs().mean()
