"""The real-time options on a CUDA GPU, where their GPU-only parts run: CUDA graphs, fp8 tensor-core
matmul, attention kernels that exist only there, and decode on a second CUDA stream. Each equals the
plain path; every test skips (saying why) on a machine without CUDA, which is every CI machine.

    pytest tests/test_realtime_gpu.py   # on a GPU machine
"""

import pytest
import torch

from test_realtime_unit import IN_PLACE, JOIN, video
from test_causal_unit import tiny_model
from tempo_pack.models import attention, fp8
from tempo_pack.samplers import causal
from tempo_pack.video.overlap import run_in_order

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU here: the GPU-only parts (CUDA graphs, fp8 tensor cores, "
                                       "flash / cuDNN attention, a second CUDA stream) are checked on a GPU machine")


def gpu_model(seed=21):
    return tiny_model(seed, dim=256, num_heads=2).cuda()


def test_in_place_and_joined_agree_on_the_gpu():
    m = gpu_model()
    torch.testing.assert_close(video(m, 5, 3, IN_PLACE, 1, 4), video(m, 5, 3, JOIN, 1, 4), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["layers", "layers + CUDA graphs"])
def test_compiled_and_graphed_layers_equal_eager_on_the_gpu(mode):
    m = gpu_model()
    eager = video(m, 5, 3, IN_PLACE, 1, 4)
    fast = video(m, 5, 3, causal.Speed(compile=mode), 1, 4)
    torch.testing.assert_close(fast, eager, rtol=1e-3, atol=1e-3)
    m.causal.compile("off")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_cuda_graphs_are_captured_and_replayed_not_skipped(monkeypatch, dtype):
    """'layers + CUDA graphs' really runs CUDA graphs: replays are counted, inductor skipped none, and the
    runner says "on" (a skip would say "skipped" and warn)."""
    from tempo_pack.models.causal_wan import cudagraph_skips

    replays = []
    real = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda self: (replays.append(1), real(self))[1])
    m = gpu_model().to(dtype)
    skips = cudagraph_skips()
    eager = video(m, 5, 3, IN_PLACE, 1, 4)
    fast = video(m, 5, 3, causal.Speed(compile="layers + CUDA graphs"), 1, 4)
    tol = 5e-2 if dtype == torch.bfloat16 else 1e-3
    torch.testing.assert_close(fast.float(), eager.float(), rtol=tol, atol=tol)
    assert m.causal.graphs == "on" and cudagraph_skips() == skips and len(replays) > 10, (m.causal.graphs, replays)
    m.causal.compile("off")


def test_cuda_graphs_stay_on_under_comfyuis_fp8_linear(tmp_path):
    """ComfyUI's fp8 linear (weight_dtype fp8_e4m3fn_fast) clamps its input in place: no input of a compiled
    half reaches a linear layer, so inductor keeps CUDA graphs, end to end through the sampler node."""
    from conftest import COMFYUI
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.models.causal_wan import cudagraph_skips

    if COMFYUI is None or torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("needs ComfyUI and fp8 tensor cores (compute capability 8.9+)")
    factory.import_comfy(COMFYUI, cpu=False)
    from tempo_pack.nodes.causal_speed import CausalSpeed
    from tempo_pack.nodes.causal_video import plan_video
    from tempo_pack.nodes.wan_models import load_causal_model

    model = load_causal_model(factory.write_causal_safetensors(str(tmp_path / "c.safetensors")), "fp8_e4m3fn_fast")[0]
    sped = CausalSpeed.execute(model, compile="layers + CUDA graphs").args[0]
    args = dict(width=64, height=48, length=21, seed=0, schedule="Self Forcing", custom_timesteps="", shift=5.0,
                frames_per_block="auto", cache="window", sink_size=1, local_attn_size=7)
    skips = cudagraph_skips()
    blocks = [lat for _, lat in plan_video(sped, [[torch.zeros(1, 12, 4096), {}]], **args).blocks()]
    assert len(blocks) == 2 and all(torch.isfinite(b).all() for b in blocks)
    assert cudagraph_skips() == skips, "inductor skipped CUDA graphs (an input mutated in place?)"


def test_every_gpu_attention_kernel_equals_sdpa_math():
    g = torch.Generator(device="cuda").manual_seed(0)
    # as the causal path calls them: [B, H, L, D] views of [B, L, H, D], keys a slice of a cache buffer
    q = torch.randn(1, 1560 * 3, 12, 128, device="cuda", dtype=torch.bfloat16, generator=g).transpose(1, 2)
    cache = torch.randn(2, 1, 1560 * 24, 12, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    k, v = (cache[i, :, 1560 * 3:1560 * 21].transpose(1, 2) for i in range(2))
    want = attention.attention_backend("sdpa math", "cuda", torch.bfloat16)(q.float(), k.float(), v.float())
    for name in attention.available("cuda", torch.bfloat16):
        got = attention.attention_backend(name, "cuda", torch.bfloat16)(q, k, v).float()
        tol = 5e-2 if name == "sage" else 2e-2
        torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=f"attention '{name}'")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("scaling", fp8.SCALINGS)
def test_tensor_core_fp8_matmul_equals_its_dequantized_product(scaling, dtype):
    """The kernel against the product it defines (the CPU's path), in every activation dtype: per-row
    writes bf16 only (cast back), a float32 output takes no fused bias (added after), and 4680 rows
    (832x480's tokens per 3 frames / 1) are not a multiple of 16 (no padding)."""
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 tensor cores need Ada or Hopper (compute capability 8.9+)")
    lin = torch.nn.Linear(256, 512).cuda().to(dtype)
    x = torch.randn(4680, 256, device="cuda", dtype=dtype)
    l8 = fp8.fp8_operations(scaling).Linear(256, 512).cuda().to(dtype)
    l8.load_state_dict(lin.state_dict())
    y = l8(x)
    assert y.dtype == dtype
    x8, sx = fp8.quantize(x, scaling)
    sa, sb = (sx.reshape(()), l8.w_scale.reshape(())) if scaling == "per-tensor" else (sx, l8.w_scale.reshape(1, -1))
    want = fp8.emulated_scaled_mm(x8, l8.weight.t(), sa, sb, lin.bias)
    torch.testing.assert_close(y.float(), want, rtol=2e-2, atol=2e-2)


def test_decode_on_a_second_stream_equals_inline():
    m = gpu_model()
    spec = causal.VideoSpec(4, 6, 12, 3, tuple(causal.schedule_sigmas([1000, 750, 500, 250], 5.0)), 5, 1, 4,
                            channels=4)
    conv = torch.nn.Conv3d(4, 8, 3, padding=1).cuda()
    out = {}
    for overlap in (False, True):
        got = out[overlap] = []
        items = ((kind, x) for kind, x in causal.CausalSession(m.causal, spec, "cuda").run(
            torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(1))))
        with torch.no_grad():
            run_in_order(lambda kind, x: got.append(conv(x).cpu()), items, overlap, device="cuda")
    for a, b in zip(out[False], out[True]):
        torch.testing.assert_close(a, b)


def test_the_decode_worker_waits_for_a_slow_producer_and_keeps_its_memory():
    """A block still being written on the caller's stream when it is handed over (a kernel that sleeps
    first, then fills): the worker reads the filled values, and the caller's next allocation does not
    reuse the block's memory while the worker reads it."""
    from tempo_pack.video.overlap import BlockWorker

    seen = []

    def work(x):
        torch.cuda._sleep(50_000_000)  # the worker is slow too: the caller's next block is allocated meanwhile
        seen.append(float(x.float().mean()))

    worker = BlockWorker(work, depth=2, device="cuda")
    for i in range(4):
        x = torch.empty(1 << 20, device="cuda")
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before the fill: a slow producer
        x.fill_(float(i + 1))
        worker.submit(x)
        del x  # the caller lets go at once: only record_stream keeps the memory for the worker
        y = torch.empty(1 << 20, device="cuda").fill_(-7.0)  # would land on the freed block without it
        del y
    worker.close()
    assert seen == [1.0, 2.0, 3.0, 4.0]


@pytest.fixture(scope="module")
def dynamic_vram_model(tmp_path_factory):
    """A Tempo-loaded causal model under ComfyUI 0.16+'s dynamic VRAM on this GPU (weights streamed per
    layer call through comfy-aimdo), started the way ComfyUI's main.py starts it."""
    from conftest import COMFYUI

    if COMFYUI is None:
        pytest.skip("no ComfyUI (COMFYUI_PATH)")
    from tempo_pack.factory import checkpoints as factory

    factory.import_comfy(COMFYUI, cpu=False)
    import comfy.memory_management
    import comfy.model_management
    import comfy.model_patcher

    if not hasattr(comfy.model_patcher, "ModelPatcherDynamic"):
        pytest.skip("this ComfyUI has no dynamic VRAM (0.16 on)")
    import comfy_aimdo.control

    comfy_aimdo.control.init()
    if not comfy_aimdo.control.init_devices(d.index for d in comfy.model_management.get_all_torch_devices()):
        pytest.skip("comfy-aimdo could not start on this GPU")
    comfy.model_patcher.CoreModelPatcher = comfy.model_patcher.ModelPatcherDynamic
    comfy.memory_management.aimdo_enabled = True
    from tempo_pack.nodes.wan_models import load_causal_model

    path = factory.write_causal_safetensors(str(tmp_path_factory.mktemp("dyn") / "causal.safetensors"))
    return load_causal_model(path, "bf16")[0]


@pytest.mark.parametrize("mode", ["layers", "layers + CUDA graphs"])
def test_compiled_layers_on_a_dynamic_vram_model_run_resident_weights_and_equal_eager(dynamic_vram_model, mode):
    """Compiled code and CUDA graphs never replay streamed weights: the Speed node hands the sampler a
    resident copy (ComfyUI's clone(disable_dynamic=True) through Tempo's reload factory), and the video it
    makes equals the dynamic model's eager one."""
    from tempo_pack.nodes import compat
    from tempo_pack.nodes.causal_speed import CausalSpeed
    from tempo_pack.nodes.causal_video import plan_video

    assert compat.is_dynamic(dynamic_vram_model)
    sped = CausalSpeed.execute(dynamic_vram_model, compile=mode).args[0]
    assert not compat.is_dynamic(sped)
    args = dict(width=64, height=48, length=21, seed=0, schedule="Self Forcing", custom_timesteps="", shift=5.0,
                frames_per_block="auto", cache="window", sink_size=1, local_attn_size=7)
    cond = [[torch.zeros(1, 12, 4096), {}]]
    eager = [lat for _, lat in plan_video(dynamic_vram_model, cond, **args).blocks()]
    for _ in range(2):  # the second video replays what the first compiled / captured
        fast = [lat for _, lat in plan_video(sped, cond, **args).blocks()]
        for a, b in zip(eager, fast):
            torch.testing.assert_close(a, b, rtol=3e-2, atol=3e-2)
