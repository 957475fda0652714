"""Wan 2.1 checkpoints in every layout they are published in, as Wan 2.1 key names.

Plain torch. Self Forcing / Causal Forcing ``.pt`` files (``generator_ema``, else
``generator``; ``model.`` and FSDP prefixes), CausVid ``model.pt``, rCM ``.pt`` (``net.``, a
Linear patch embedding), ComfyUI repackages
(safetensors, sometimes ``model.diffusion_model.``), and diffusers ``WanTransformer3DModel``
folders or files. What a file says about itself (causal or not, frames per block) is read
from its metadata.
"""

from __future__ import annotations

import json
import os
import re

from .classify import CAUSAL_FAMILIES, family_from_name, file_kind
from .files import CheckpointError, header_metadata, read_file

PREFIXES = ("model._fsdp_wrapped_module.", "_fsdp_wrapped_module.", "model.diffusion_model.", "diffusion_model.",
            "model.", "module.", "net.", "_orig_mod.")
# Wrappers whose names sit inside keys: activation checkpointing (rCM's blocks, NVlabs/rcm@5b41aa9
# rcm/networks/wan2pt1.py:798-808) and torch.compile.
INNER_WRAPPERS = ("_checkpoint_wrapped_module.", "_orig_mod.")

DIFFUSERS_MAP = [
    (r"^condition_embedder\.text_embedder\.linear_1\.", "text_embedding.0."),
    (r"^condition_embedder\.text_embedder\.linear_2\.", "text_embedding.2."),
    (r"^condition_embedder\.time_embedder\.linear_1\.", "time_embedding.0."),
    (r"^condition_embedder\.time_embedder\.linear_2\.", "time_embedding.2."),
    (r"^condition_embedder\.time_proj\.", "time_projection.1."),
    (r"^condition_embedder\.image_embedder\.norm1\.", "img_emb.proj.0."),
    (r"^condition_embedder\.image_embedder\.ff\.net\.0\.proj\.", "img_emb.proj.1."),
    (r"^condition_embedder\.image_embedder\.ff\.net\.2\.", "img_emb.proj.3."),
    (r"^condition_embedder\.image_embedder\.norm2\.", "img_emb.proj.4."),
    (r"^blocks\.(\d+)\.attn1\.to_q\.", r"blocks.\1.self_attn.q."),
    (r"^blocks\.(\d+)\.attn1\.to_k\.", r"blocks.\1.self_attn.k."),
    (r"^blocks\.(\d+)\.attn1\.to_v\.", r"blocks.\1.self_attn.v."),
    (r"^blocks\.(\d+)\.attn1\.to_out\.0\.", r"blocks.\1.self_attn.o."),
    (r"^blocks\.(\d+)\.attn1\.norm_q\.", r"blocks.\1.self_attn.norm_q."),
    (r"^blocks\.(\d+)\.attn1\.norm_k\.", r"blocks.\1.self_attn.norm_k."),
    (r"^blocks\.(\d+)\.attn2\.to_q\.", r"blocks.\1.cross_attn.q."),
    (r"^blocks\.(\d+)\.attn2\.to_k\.", r"blocks.\1.cross_attn.k."),
    (r"^blocks\.(\d+)\.attn2\.to_v\.", r"blocks.\1.cross_attn.v."),
    (r"^blocks\.(\d+)\.attn2\.to_out\.0\.", r"blocks.\1.cross_attn.o."),
    (r"^blocks\.(\d+)\.attn2\.norm_q\.", r"blocks.\1.cross_attn.norm_q."),
    (r"^blocks\.(\d+)\.attn2\.norm_k\.", r"blocks.\1.cross_attn.norm_k."),
    (r"^blocks\.(\d+)\.attn2\.add_k_proj\.", r"blocks.\1.cross_attn.k_img."),
    (r"^blocks\.(\d+)\.attn2\.add_v_proj\.", r"blocks.\1.cross_attn.v_img."),
    (r"^blocks\.(\d+)\.attn2\.norm_added_k\.", r"blocks.\1.cross_attn.norm_k_img."),
    (r"^blocks\.(\d+)\.norm2\.", r"blocks.\1.norm3."),
    (r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.", r"blocks.\1.ffn.0."),
    (r"^blocks\.(\d+)\.ffn\.net\.2\.", r"blocks.\1.ffn.2."),
    (r"^blocks\.(\d+)\.scale_shift_table$", r"blocks.\1.modulation"),
    (r"^proj_out\.", "head.head."),
    (r"^scale_shift_table$", "head.modulation"),
]


def is_diffusers_wan(sd: dict) -> bool:
    return "condition_embedder.time_proj.weight" in sd or any(".attn1.to_q." in k for k in sd)


def diffusers_to_wan(sd: dict) -> dict:
    out = {}
    compiled = [(re.compile(a), b) for a, b in DIFFUSERS_MAP]
    for k, v in sd.items():
        for rx, repl in compiled:
            if rx.search(k):
                k = rx.sub(repl, k)
                break
        out[k] = v
    return out


def _unwrap(key: str) -> str:
    for w in INNER_WRAPPERS:
        key = key.replace(w, "")
    return key


def strip_prefixes(sd: dict) -> dict:
    for p in PREFIXES:
        if sd and all(k.startswith(p) for k in sd):
            return strip_prefixes({k[len(p):]: v for k, v in sd.items()})
    return sd


def refuse_kernel_only_files(sd: dict, name: str) -> None:
    """TurboDiffusion's files carry weights only its own kernels run (thu-ml/TurboDiffusion@aaecff5
    turbodiffusion/modify_model.py:47-67): int8 ``-quant`` linears (``int8_weight`` + block
    ``scale``) and SLA sparse attention (``self_attn.attn_op.local_attn.proj_l``)."""
    if any(k.endswith(".int8_weight") for k in sd):
        raise CheckpointError(f"{name} is a TurboDiffusion int8 '-quant' file: its linear layers are int8 blocks that "
                              "only TurboDiffusion's own kernels run. Use the rCM file of the same model instead "
                              "(rCM_Wan2.1_T2V_1.3B_480p.pt, rCM_Wan2.1_T2V_14B_480p.pt, or the Wan 2.2 I2V "
                              "high/low rCM-merged .pt files), with the rCM preset")
    if any(".attn_op.local_attn.proj_l." in k for k in sd):
        raise CheckpointError(f"{name} is a TurboDiffusion file tuned for its SLA sparse attention (it carries "
                              "self_attn.attn_op.local_attn.proj_l weights), which ComfyUI does not run. Use the rCM "
                              "file of the same model instead (rCM_Wan2.1_T2V_1.3B_480p.pt, rCM_Wan2.1_T2V_14B_480p.pt, "
                              "or the Wan 2.2 I2V high/low rCM-merged .pt files), with the rCM preset")


def wan_state_dict(sd: dict, name: str = "checkpoint") -> dict:
    """Wan 2.1 naming, whatever layout ``sd`` came in; CheckpointError when it is not a Wan DiT."""
    sd = strip_prefixes(sd)
    if any(w in k for k in sd for w in INNER_WRAPPERS):
        sd = {_unwrap(k): v for k, v in sd.items()}
    refuse_kernel_only_files(sd, name)
    if is_diffusers_wan(sd):
        sd = diffusers_to_wan(sd)
    patch = sd.get("patch_embedding.weight")
    if patch is not None and patch.ndim == 2 and patch.shape[1] % 4 == 0:
        # rCM keeps the patch embedding as a Linear over (c, kt, kh, kw) = (c, 1, 2, 2) (NVlabs/rcm@5b41aa9
        # rcm/networks/wan2pt1.py:567, :656): the Conv3d weight is the same numbers
        sd = dict(sd)
        sd["patch_embedding.weight"] = patch.reshape(patch.shape[0], patch.shape[1] // 4, 1, 2, 2)
    if "patch_embedding.weight" not in sd or "blocks.0.self_attn.q.weight" not in sd:
        kind = file_kind(sd)
        raise CheckpointError(f"{name} is not a Wan 2.1 video transformer (it looks like a {kind}); causal video "
                              "models are Wan 2.1 DiTs (Self Forcing, CausVid, Causal Forcing)")
    return sd


def read_causal_metadata(metadata: dict) -> dict:
    """What the file says about itself: {"causal": bool|None, "frames_per_block": int|None, "family": str|None}."""
    info = {"causal": None, "frames_per_block": None, "family": None}
    cfg = metadata.get("config")
    if cfg:
        try:
            transformer = json.loads(cfg).get("transformer", {})
        except (json.JSONDecodeError, AttributeError):
            transformer = {}
        if "causal_ar" in transformer:
            info["causal"] = bool(transformer["causal_ar"])
        if "num_frame_per_block" in transformer:
            info["frames_per_block"] = int(transformer["num_frame_per_block"])
    if metadata.get("tempo.causal") is not None:
        info["causal"] = metadata["tempo.causal"] in ("1", "true", "True")
    if metadata.get("tempo.frames_per_block"):
        info["frames_per_block"] = int(metadata["tempo.frames_per_block"])
    if metadata.get("tempo.family"):
        info["family"] = metadata["tempo.family"]
    return info


def infer_from_name(path: str) -> dict:
    """Published causal checkpoints by file name: self_forcing_dmd.pt (chunk-wise, 3 frames),
    causal_forcing / *framewise* (1), causvid (3)."""
    name = os.path.basename(os.path.normpath(path)).lower()
    info = {"causal": None, "frames_per_block": None, "family": None}
    family = family_from_name(name)
    if family in CAUSAL_FAMILIES:
        info.update(causal=True, family=family)
    if "framewise" in name or "frame_wise" in name or "frame-wise" in name:
        info["frames_per_block"] = 1
    elif "chunkwise" in name or "chunk_wise" in name or "chunk-wise" in name:
        info["frames_per_block"] = 3
    return info


# Causal releases whose sampling settings are not published with code: refused, with the reason.
UNPUBLISHED = [(r"aad[-_ ]?1", "AAD-1 (arXiv 2606.03972, Watay/AAD-1) publishes weights and LoRAs but no inference "
                "code or settings: the timestep each chunk is fed, the frames per chunk and the KV window are not "
                "stated anywhere, so it cannot be run as its authors do. Its extracted HIGH / LOW LoRAs load with "
                "ComfyUI's LoraLoaderModelOnly on a Wan 2.2 I2V A14B base, sampled by your own settings")]


def refuse_unpublished(name: str) -> None:
    for pattern, why in UNPUBLISHED:
        if re.search(pattern, name, re.IGNORECASE):
            raise CheckpointError(f"{name}: {why}")


# One-step / few-step (non-causal) Wan video files: what says so, by metadata key or by name.
ONE_STEP_VIDEO_KEYS = ("tempo.timestep", "tempo.sigmas", "tempo.preset")
ONE_STEP_VIDEO_NAMES = [(r"(^|[^a-z])rcm([^a-z]|$)", "an rCM few-step video model"),
                        (r"(^|[^a-z])apt([^a-z]|$)|seaweed", "an APT one-step video model")]


def one_step_video(name: str, metadata: dict) -> str | None:
    """What a file is when it says it is a one-step / few-step (non-causal) video model, else None."""
    if read_causal_metadata(metadata)["causal"]:
        return None
    found = [k for k in ONE_STEP_VIDEO_KEYS if metadata.get(k)]
    if found:
        return f"a one-step video model (its metadata sets {', '.join(found)})"
    return next((what for pattern, what in ONE_STEP_VIDEO_NAMES if re.search(pattern, name, re.IGNORECASE)), None)


def refuse_one_step_video(name: str, metadata: dict) -> None:
    what = one_step_video(name, metadata)
    if what:
        raise CheckpointError(f"{name} is {what}, not a causal one: it makes a whole clip at once, and block by block "
                              "it would make poor video. Load it with 'Tempo One-Step Video Loader' and sample it with "
                              "Tempo One-Step Generate; causal video needs a Self Forcing, CausVid or Causal Forcing "
                              "checkpoint")


def read_wan_checkpoint(path: str, causal_only: bool = False) -> tuple[dict, dict]:
    """(Wan 2.1 state dict, what the file says: causal, frames_per_block, family)."""
    name = os.path.basename(os.path.normpath(path))
    refuse_unpublished(name)
    if os.path.isdir(path):
        sub = os.path.join(path, "transformer") if os.path.isdir(os.path.join(path, "transformer")) else path
        from .files import read_diffusers_component

        sd, _ = read_diffusers_component(sub)
        metadata = {}
    else:
        if causal_only:  # said from the name and the header, before the weights are read
            refuse_one_step_video(name, header_metadata(path))
        raw, metadata = read_file(path)
        if any(k in raw for k in ("generator_ema", "generator")) and not all(hasattr(v, "shape") for v in raw.values()):
            raw = raw.get("generator_ema") or raw.get("generator")
        from .files import flatten_state_dict

        sd = flatten_state_dict(raw, path)
    info = infer_from_name(path)
    for k, v in read_causal_metadata(metadata).items():
        if v is not None:
            info[k] = v
    info["metadata"] = dict(metadata)
    if causal_only:
        refuse_one_step_video(name, metadata)
    return wan_state_dict(sd, name), info
