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


def test_every_gpu_attention_kernel_equals_sdpa_math():
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, 12, 1560 * 2, 128, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
    want = attention.attention_backend("sdpa math", "cuda", torch.bfloat16)(q.float(), k.float(), v.float())
    for name in attention.available("cuda", torch.bfloat16):
        got = attention.attention_backend(name, "cuda", torch.bfloat16)(q, k, v).float()
        tol = 5e-2 if name == "sage" else 2e-2
        torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=f"attention '{name}'")


@pytest.mark.parametrize("scaling", fp8.SCALINGS)
def test_tensor_core_fp8_matmul_equals_its_dequantized_product(scaling):
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 tensor cores need Ada or Hopper (compute capability 8.9+)")
    lin = torch.nn.Linear(256, 512).cuda().bfloat16()
    x = torch.randn(4, 1560, 256, device="cuda", dtype=torch.bfloat16)
    l8 = fp8.fp8_operations(scaling).Linear(256, 512).cuda().bfloat16()
    l8.load_state_dict(lin.state_dict())
    y = l8(x).float()
    x8, sx = fp8.quantize(x.reshape(-1, 256), scaling)
    want = (x8.float() * sx) @ (l8.weight.float() * l8.w_scale).t() + lin.bias.float()
    torch.testing.assert_close(y.reshape(-1, 512), want, rtol=2e-2, atol=2e-2)


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
