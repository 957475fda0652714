"""The causal presets against the authors' own inference code: Self Forcing's and Causal Forcing's
CausalInferencePipeline (pipeline/causal_inference.py: the warped denoising list, the first-chunk
list of Causal Forcing++, re-noising, the refill at t = context_noise) and their CausalWanModel
(wan/modules/causal_model.py: the KV cache with local_attn_size and sink_size), run on the CPU.

Needs a checkout named by ``SELF_FORCING_PATH`` (guandeh17/Self-Forcing, tree of 33593df) and/or
``CAUSAL_FORCING_PATH`` (thu-ml/Causal-Forcing, tree of 1fc7bbc), e.g. ``git archive HEAD pipeline utils
wan | tar x -C DIR``; the suite cannot fetch them, so without them this module skips (the written-out
rules are checked in every run: test_causal_unit.py). Only these are replaced, none of them part of the
rules compared: the attention kernel by fp32 SDPA, the text encoder by the given embeddings, the
generator wrapper's flow-to-x0 step (x0 = x - sigma v, sigma = t / 1000) and the scheduler's add_noise
(x = (1 - sigma) x0 + sigma eps) fed with the block's own re-noise generator, and modules that touch
CUDA at import (demo_utils.memory) or load real weights (utils.wan_wrapper).
"""

import os
import types

import pytest
import torch

from authors_code import BlockRenoise, authors_tree
from tempo_pack.models.causal_wan import CausalWanModel
from tempo_pack.samplers import causal

ROOTS = {"Self Forcing": os.environ.get("SELF_FORCING_PATH", ""),
         "Causal Forcing": os.environ.get("CAUSAL_FORCING_PATH", "")}
CFG = dict(dim=1536, num_heads=12, ffn_dim=256, num_layers=2, in_dim=4, out_dim=4, text_dim=32, freq_dim=32)
H, W, TPF = 4, 6, 6


def _root(repo):
    root = ROOTS[repo]
    if not os.path.isfile(os.path.join(root, "pipeline", "causal_inference.py")):
        pytest.skip(f"{'SELF_FORCING_PATH' if repo == 'Self Forcing' else 'CAUSAL_FORCING_PATH'} does not name a "
                    f"{repo} checkout (pipeline/causal_inference.py); the cross-check against the authors' code is "
                    "skipped, the written-out rules are tested in test_causal_unit")
    return root


@pytest.fixture()
def authors(request):
    with authors_tree(_root(request.param)) as cm:
        import pipeline.causal_inference as ci
        import utils.scheduler as sch

        yield ci, sch, cm


def run_authors(ci, sch, cm, ours, preset, prompt, blocks, local, sink, seed=5):
    fpb = preset.frames_per_block
    model = cm.CausalWanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=512, local_attn_size=local,
                              sink_size=sink, **CFG).eval()
    model.load_state_dict(ours.state_dict(), strict=True)
    shape = (1, CFG["in_dim"], fpb, H, W)
    current = {"block": 0}
    scheduler = sch.FlowMatchScheduler(shift=preset.shift, sigma_min=0.0, extra_one_step=True)
    scheduler.set_timesteps(1000, training=True)  # utils/wan_wrapper.py:136-139

    class Generator(torch.nn.Module):  # WanDiffusionWrapper's job: [B, F, C, H, W] <-> the model, flow -> x0
        def __init__(self):
            super().__init__()
            self.model = model

        def get_scheduler(self):
            return scheduler

        def forward(self, noisy_image_or_video, conditional_dict, timestep, kv_cache, crossattn_cache, current_start):
            if timestep.float().max() > 0:
                current["block"] = current_start // TPF // fpb
            x = noisy_image_or_video.permute(0, 2, 1, 3, 4)
            flow = self.model(x, t=timestep.float(), context=conditional_dict["prompt_embeds"], seq_len=10 ** 6,
                              kv_cache=kv_cache, crossattn_cache=crossattn_cache, current_start=current_start)
            x0 = x - timestep.float()[:, None, :, None, None] / 1000.0 * flow
            return flow.permute(0, 2, 1, 3, 4), x0.permute(0, 2, 1, 3, 4)

    args = types.SimpleNamespace(denoising_step_list=list(preset.timesteps), warp_denoising_step=preset.shift != 1.0,
                                 denoising_step_list_first_chunk=list(preset.first_timesteps) or None,
                                 num_frame_per_block=fpb, independent_first_frame=False,
                                 context_noise=preset.context_noise)
    pipe = ci.CausalInferencePipeline(args, "cpu", generator=Generator(),
                                      text_encoder=lambda text_prompts: {"prompt_embeds": text_prompts},
                                      vae=types.SimpleNamespace(decode_to_pixel=lambda x, use_cache=False: x))
    pipe.scheduler = BlockRenoise(seed, shape, current)
    pipe.num_transformer_blocks, pipe.frame_seq_length = CFG["num_layers"], TPF
    model.num_frame_per_block = fpb
    noise = torch.cat([causal.block_noise(shape, seed, b) for b in range(blocks)], dim=2).permute(0, 2, 1, 3, 4)
    with torch.no_grad():
        _, out = pipe.inference(noise, text_prompts=prompt, return_latents=True)
    return out.permute(0, 2, 1, 3, 4)


CASES = [  # (repository, preset, authors' local_attn_size, sink_size, blocks)
    ("Self Forcing", "Self Forcing", -1, 0, 4),     # as released: global attention
    ("Self Forcing", "Self Forcing", 12, 3, 7),     # a rolling window with a sink (the model's own parameters)
    ("Causal Forcing", "Causal Forcing", -1, 0, 4),
    ("Causal Forcing", "Causal Forcing frame-wise", -1, 0, 6),
    ("Causal Forcing", "Causal Forcing++ 2-step", -1, 0, 6),
    ("Causal Forcing", "Causal Forcing++ 1-step", 8, 2, 12),
]


@pytest.mark.parametrize("authors,name,local,sink,blocks", CASES, indirect=["authors"],
                         ids=[f"{c[1]}-L{c[2]}-S{c[3]}" for c in CASES])
def test_preset_equals_the_authors_pipeline(authors, name, local, sink, blocks):
    ci, sch, cm = authors
    preset = causal.PRESETS[name]
    fpb = preset.frames_per_block
    torch.manual_seed(0)
    ours = CausalWanModel(**CFG).eval()
    with torch.no_grad():
        for pname, p in ours.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in pname and pname.endswith("weight") else torch.randn_like(p) * 0.05)
    g = torch.Generator().manual_seed(9)
    short = torch.randn(1, 7, CFG["text_dim"], generator=g)
    ref = run_authors(ci, sch, cm, ours, preset, causal.text_context(short), blocks, local, sink)
    window = None if local == -1 else causal.window_in_cache_terms(local, sink, fpb)
    sigmas = tuple(causal.schedule_sigmas(preset.timesteps, preset.shift))
    first = tuple(causal.schedule_sigmas(preset.first_timesteps, preset.shift)) if preset.first_timesteps else ()
    spec = causal.VideoSpec(H, W, blocks * fpb, fpb, sigmas, 5, sink, window, channels=CFG["in_dim"],
                            first_sigmas=first, context_noise=preset.context_noise)
    got = [x for kind, x in causal.CausalSession(ours.causal, spec).run(short) if kind == "block"]  # 7 rows: padded
    torch.testing.assert_close(torch.cat(got, dim=2), ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("authors", ["Causal Forcing"], indirect=True)
def test_without_the_first_block_list_or_with_the_block_outside_the_window_the_authors_differ(authors):
    """What the comparison above can tell apart: the ++ first-block list, and local_attn_size counting
    the block (the pack's old reading, a window of local_attn_size - sink frames besides the block)."""
    ci, sch, cm = authors
    torch.manual_seed(0)
    ours = CausalWanModel(**CFG).eval()
    with torch.no_grad():
        for pname, p in ours.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in pname and pname.endswith("weight") else torch.randn_like(p) * 0.05)
    short = torch.randn(1, 7, CFG["text_dim"], generator=torch.Generator().manual_seed(9))
    preset = causal.PRESETS["Causal Forcing++ 1-step"]
    ref = run_authors(ci, sch, cm, ours, preset, causal.text_context(short), 12, 8, 2)
    sigmas = tuple(causal.schedule_sigmas(preset.timesteps, preset.shift))
    first = tuple(causal.schedule_sigmas(preset.first_timesteps, preset.shift))
    for first_sigmas, window in (((), 5), (first, 6)):
        spec = causal.VideoSpec(H, W, 12, 1, sigmas, 5, 2, window, channels=CFG["in_dim"], first_sigmas=first_sigmas)
        got = torch.cat([x for k, x in causal.CausalSession(ours.causal, spec).run(short) if k == "block"], dim=2)
        assert not torch.allclose(got, ref, rtol=1e-3, atol=1e-4)
