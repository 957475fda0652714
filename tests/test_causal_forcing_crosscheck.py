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

from authors_code import (CFG, NO_VAE, TPF, BlockRenoise, FlowGenerator, H, W, authors_model, authors_tree,
                          no_text_encoder, random_ours, video_noise)
from tempo_pack.samplers import causal

ROOTS = {"Self Forcing": os.environ.get("SELF_FORCING_PATH", ""),
         "Causal Forcing": os.environ.get("CAUSAL_FORCING_PATH", "")}


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
    shape, current = (1, CFG["in_dim"], fpb, H, W), {"block": 0}
    scheduler = sch.FlowMatchScheduler(shift=preset.shift, sigma_min=0.0, extra_one_step=True)
    scheduler.set_timesteps(1000, training=True)  # utils/wan_wrapper.py:136-139
    args = types.SimpleNamespace(denoising_step_list=list(preset.timesteps), warp_denoising_step=preset.shift != 1.0,
                                 denoising_step_list_first_chunk=list(preset.first_timesteps) or None,
                                 num_frame_per_block=fpb, independent_first_frame=False,
                                 context_noise=preset.context_noise)
    generator = FlowGenerator(authors_model(cm, ours, local, sink, fpb), fpb, current, scheduler)
    pipe = ci.CausalInferencePipeline(args, "cpu", generator=generator, text_encoder=no_text_encoder, vae=NO_VAE)
    pipe.scheduler = BlockRenoise(seed, shape, current)  # after __init__ read the warp from the real one
    pipe.num_transformer_blocks, pipe.frame_seq_length = CFG["num_layers"], TPF
    noise = video_noise(seed, shape, blocks)
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
    preset = causal.CAUSAL_PRESETS[name]
    fpb = preset.frames_per_block
    ours = random_ours()
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
    ours = random_ours()
    short = torch.randn(1, 7, CFG["text_dim"], generator=torch.Generator().manual_seed(9))
    preset = causal.CAUSAL_PRESETS["Causal Forcing++ 1-step"]
    ref = run_authors(ci, sch, cm, ours, preset, causal.text_context(short), 12, 8, 2)
    sigmas = tuple(causal.schedule_sigmas(preset.timesteps, preset.shift))
    first = tuple(causal.schedule_sigmas(preset.first_timesteps, preset.shift))
    for first_sigmas, window in (((), 5), (first, 6)):
        spec = causal.VideoSpec(H, W, 12, 1, sigmas, 5, 2, window, channels=CFG["in_dim"], first_sigmas=first_sigmas)
        got = torch.cat([x for k, x in causal.CausalSession(ours.causal, spec).run(short) if k == "block"], dim=2)
        assert not torch.allclose(got, ref, rtol=1e-3, atol=1e-4)
