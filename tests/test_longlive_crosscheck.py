"""The re-cache against LongLive's own code: its InteractiveCausalInferencePipeline (switching,
_recache_after_switch) and its CausalWanModel (KV cache index rules), run on the CPU.

Needs a checkout of NVlabs/LongLive v1 (the tree of commit 2462895, the parent of "LongLive 2.0";
e.g. ``git archive 2462895 pipeline utils wan | tar x -C DIR``) named by ``LONGLIVE_PATH``; the
suite cannot fetch it, so without it this module skips (the written-out rule in
``causal_reference.py`` is checked in every run by test_steering_unit.py). Only these are
replaced, none of them part of the switching rule: the flash-attention kernel by fp32 SDPA (its
CPU fallback computes in bf16), the text encoder by the given embeddings, the generator wrapper's
flow-to-x0 step (x0 = x - sigma v, sigma = t / 1000 on the warped grid) and the scheduler's
add_noise (x = (1 - sigma) x0 + sigma eps) fed with the block's own re-noise generator, and
modules that touch CUDA at import (utils.memory) or load real weights (utils.wan_wrapper).
"""

import os
import types

import pytest
import torch

from authors_code import (CFG, NO_VAE, TPF, BlockRenoise, FlowGenerator, H, W, authors_model, authors_tree,
                          no_text_encoder, random_ours, video_noise)
from tempo_pack.samplers import causal

ROOT = os.environ.get("LONGLIVE_PATH", "")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "pipeline", "interactive_causal_inference.py")),
    reason="LONGLIVE_PATH does not name a LongLive v1 checkout (pipeline/interactive_causal_inference.py); the "
           "cross-check against the authors' code is skipped, the written-out rule is tested in test_steering_unit")

SIGMAS = tuple(causal.schedule_sigmas(*causal.CAUSAL_SCHEDULES["Self Forcing"]))


@pytest.fixture(scope="module")
def longlive():
    with authors_tree(ROOT) as cm:
        import pipeline.interactive_causal_inference as ici

        yield ici, cm


def run_longlive(ici, cm, ours, prompts, switch_frames, blocks, fpb, local, sink, seed=5):
    shape, current = (1, CFG["in_dim"], fpb, H, W), {"block": 0}
    pipe = object.__new__(ici.InteractiveCausalInferencePipeline)
    torch.nn.Module.__init__(pipe)
    pipe.generator = FlowGenerator(authors_model(cm, ours, local, sink, fpb), fpb, current)
    pipe.text_encoder, pipe.vae = no_text_encoder, NO_VAE
    pipe.scheduler = BlockRenoise(seed, shape, current)
    pipe.denoising_step_list = torch.tensor([s * 1000.0 for s in SIGMAS])
    pipe.num_transformer_blocks, pipe.frame_seq_length = CFG["num_layers"], TPF
    pipe.num_frame_per_block, pipe.local_attn_size = fpb, local
    pipe.args = types.SimpleNamespace(model_kwargs=types.SimpleNamespace(local_attn_size=local), context_noise=0)
    pipe.global_sink = True  # configs/longlive_interactive_inference.yaml:26
    pipe.kv_cache1 = None
    noise = video_noise(seed, shape, blocks)
    with torch.no_grad():
        _, out = pipe.inference(noise, text_prompts_list=prompts, switch_frame_indices=switch_frames,
                                return_latents=True)
    return out.permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]


@pytest.mark.parametrize("fpb,local,sink,blocks,switch_blocks", [(3, 12, 3, 9, [2, 6]), (1, 6, 1, 12, [3, 5, 9]),
                                                                 (3, -1, 0, 6, [3])])
def test_recache_equals_longlive_code(longlive, fpb, local, sink, blocks, switch_blocks):
    ici, cm = longlive
    ours = random_ours()
    g = torch.Generator().manual_seed(9)
    prompts = [torch.cat([torch.randn(1, 7, CFG["text_dim"], generator=g), torch.zeros(1, 505, CFG["text_dim"])], 1)
               for _ in range(len(switch_blocks) + 1)]  # padded to 512 tokens, as LongLive pads
    ref = run_longlive(ici, cm, ours, prompts, [b * fpb for b in switch_blocks], blocks, fpb, local, sink)
    spec = causal.VideoSpec(H, W, blocks * fpb, fpb, SIGMAS, 5, sink, None if local == -1 else local - sink - fpb,
                            channels=CFG["in_dim"])
    got = [x for kind, x in causal.CausalSession(ours.causal, spec).run(
        prompts[0], switches=dict(zip(switch_blocks, prompts[1:]))) if kind == "block"]
    torch.testing.assert_close(torch.cat(got, dim=2), ref, rtol=1e-3, atol=1e-4)
