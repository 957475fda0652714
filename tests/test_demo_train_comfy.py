"""``tempo.py train-demo``: seeded and reproducible, and the committed model is what it writes by default."""

import json

import pytest
import torch

pytestmark = pytest.mark.comfy


def test_training_twice_from_the_same_seed_gives_the_same_weights(comfy, tmp_path):
    """Once here, once by the command line in a process of its own (``tempo.py train-demo --steps 3
    --sf-steps 2``): the same weights and the same record."""
    import os
    import subprocess
    import sys

    from conftest import COMFYUI
    from safetensors import safe_open
    from safetensors.torch import load_file

    from tempo_pack.client.local import PACK_ROOT
    from tempo_pack.factory import demo_train as train

    logs = []
    a = train.train(str(tmp_path / "a.safetensors"), steps=3, sf_steps=2, log=logs.append)
    assert a["steps"] == 3 and a["sf_steps"] == 2
    done = subprocess.run([sys.executable, os.path.join(PACK_ROOT, "tempo.py"), "train-demo", "--steps", "3",
                           "--sf-steps", "2", "--output", str(tmp_path / "b.safetensors"), "--comfyui", COMFYUI],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with safe_open(str(tmp_path / "b.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["tempo.demo"]) == a
    wa, wb = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(m.startswith("step 0: loss") for m in logs)
    assert any(m.startswith("self-forcing step 1: loss") for m in logs)


def test_the_committed_demo_model_is_the_default_training(comfy):
    from safetensors import safe_open

    from tempo_pack.factory import demo_train as train

    with safe_open(train.TRAINED, "pt") as f:
        record = json.loads(f.metadata()["tempo.demo"])
        keys = set(f.keys())
    assert record["steps"] == train.STEPS and record["batch"] == train.BATCH
    assert record["sf_steps"] == train.SF_STEPS and record["sf_batch"] == train.SF_BATCH
    assert record["model"] == train.MODEL
    from tempo_pack.models.causal_wan import CausalWanModel

    assert keys == set(CausalWanModel(**train.MODEL).state_dict())


def test_the_demo_self_forcing_file_is_the_trained_model_in_the_released_layout(comfy, tmp_path):
    from safetensors.torch import load_file

    from tempo_pack.factory import demo_train as train
    from tempo_pack.factory import checkpoints as factory

    path = factory.write_demo_self_forcing_pt(str(tmp_path / "self_forcing_dmd.pt"))
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    trained = load_file(train.TRAINED)
    assert set(ckpt) == {"generator_ema", "generator"}
    assert all(torch.equal(ckpt["generator_ema"]["model." + k], v) for k, v in trained.items())


def test_training_reads_prompts_as_the_sampler_feeds_them(comfy):
    """The self-forcing phase's padded context (embedded once per pad row) equals the sampler's own."""
    from tempo_pack.demo import text_encoder
    from tempo_pack.factory import demo_train as train
    from tempo_pack.models.causal_wan import CausalWanModel
    from tempo_pack.samplers import causal

    runner = CausalWanModel(**{**train.MODEL, "num_layers": 1}).causal
    cond = torch.cat([text_encoder.encode("red square moving right"), text_encoder.encode("blue circle moving up")])
    with torch.no_grad():
        ours = train.sampler_context_kv(runner, cond)
        theirs = runner.cross_kv(*runner.embed_context(causal.text_context(cond)))
    flat = lambda kv: [t for layer in kv for t in (layer if isinstance(layer, (list, tuple)) else [layer])  # noqa: E731
                       if torch.is_tensor(t)]
    assert len(flat(ours)) == len(flat(theirs)) > 0
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(flat(ours), flat(theirs)))
