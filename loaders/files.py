"""Reading checkpoint files safely: safetensors, torch pickles (weights only), diffusers folders.

Plain torch + safetensors; no ComfyUI import. Every failure is a CheckpointError whose
message names the file and says what to do.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import warnings

import torch

from ..errors import TempoError

SAFETENSORS_EXT = (".safetensors", ".sft")
PICKLE_EXT = (".pt", ".pth", ".bin", ".ckpt")


class CheckpointError(TempoError):
    """A checkpoint that cannot be used as asked; the message names the file and the fix."""


def _read_safetensors(path: str) -> tuple[dict, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} is empty or truncated ({size} bytes); download it again")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, 100 << 20):
                raise CheckpointError(f"{path} is not a valid safetensors file (its header claims {n} bytes); "
                                      "it may be a torch pickle renamed to .safetensors, or a partial download")
            header = json.loads(f.read(n))
        if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
            raise CheckpointError(f"{path} is not a valid safetensors file (its header is a JSON "
                                  f"{type(header).__name__}, not a table of tensors); download it again")
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end > size:
            raise CheckpointError(f"{path} is truncated: the header describes {8 + n + end} bytes but the file has "
                                  f"{size}; the download did not finish, download it again")
        sd = load_file(path)
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, IndexError,
            AttributeError) as e:
        raise CheckpointError(f"{path} is a corrupt safetensors file ({e}); download it again") from None
    return sd, dict(header.get("__metadata__") or {})


_TORCH_BOILERPLATE = ("Weights only load failed", "In PyTorch 2.6", "Please file an issue", "Check the documentation",
                      "Re-running `torch.load`", "WeightsUnpickler error")


def _detail(e: BaseException) -> str:
    """The one line of a torch.load error that says what was wrong, without PyTorch's advice to
    load the file unsafely or to file an issue with PyTorch."""
    lines = [line.strip() for line in str(e).splitlines()]
    return next((line for line in lines if line and not line.startswith(_TORCH_BOILERPLATE)),
                type(e).__name__)[:160]


def _not_a_checkpoint(path: str, e: BaseException) -> CheckpointError:
    return CheckpointError(f"{path} is not a torch checkpoint: its bytes do not read as one (corrupt, cut short or "
                           f"of another format; {_detail(e)}); download it again")


def _holds_objects(path: str, name: str) -> CheckpointError:
    return CheckpointError(
        f"{path} holds Python objects beyond tensors ({name}), and Tempo loads pickles with weights_only=True so no "
        "code from a checkpoint ever runs. Use a safetensors version of this model, or convert it on a trusted "
        "machine")


_PICKLE_SCAN_BYTES = 256 << 20  # a plain pickle's opcodes are read (never run) up to this size
_ALLOWED_GLOBALS = ("collections.OrderedDict", "torch._utils.", "torch.", "_codecs.encode", "builtins.set",
                    "builtins.frozenset", "numpy.core.multiarray._reconstruct", "numpy.dtype", "numpy.ndarray")


def _pickle_globals(path: str) -> list[str] | None:
    """The functions and classes a plain (non-zip) pickle names, read from its opcodes without running
    any; None when the bytes are not a whole pickle."""
    import pickletools

    if os.path.getsize(path) > _PICKLE_SCAN_BYTES:
        return None
    with open(path, "rb") as f:
        data = f.read()
    names, strings = [], []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
            if op.name == "STOP":
                break
    except Exception:  # noqa: BLE001 - bytes that are no pickle: the caller says corrupt
        return None
    return names


def _read_pickle(path: str) -> tuple[dict, dict]:
    try:
        with warnings.catch_warnings():  # torch's "Detected pickle protocol N ... please file an issue"
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))  # torch names the class or function it refused
        if found is not None:
            raise _holds_objects(path, found.group(1)) from None
        names = _pickle_globals(path)  # a plain pickle torch's safe reader stopped on before naming anything
        if names is None:  # bytes that are no pickle at all (random data, another format, a cut file)
            raise _not_a_checkpoint(path, e) from None
        foreign = [n for n in names if not n.startswith(_ALLOWED_GLOBALS)]
        if foreign:
            raise _holds_objects(path, ", ".join(dict.fromkeys(foreign))) from None
        raise CheckpointError(f"{path} is a Python pickle that torch's safe reader cannot read ({_detail(e)}); "
                              "re-save it with torch.save, or use a safetensors version of this model") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError, AttributeError,
            struct.error, UnicodeDecodeError, OverflowError) as e:  # random bytes fail in the unpickler anywhere
        raise _not_a_checkpoint(path, e) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    return obj, {}


def header_metadata(path: str) -> dict:
    """A safetensors file's metadata from its header alone (nothing else read); {} for any other file."""
    if not path.lower().endswith(SAFETENSORS_EXT):
        return {}
    try:
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - a broken file is reported by the full read that follows
        return {}


_SAFETENSORS_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
                       "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def tensor_layout(path: str) -> dict[str, tuple[str, tuple]]:
    """{name: (dtype name, shape)} of a checkpoint's tensors without reading their data (a safetensors
    header, or a torch pickle mapped from disk, weights only); {} for a file that is neither."""
    try:
        if path.lower().endswith(SAFETENSORS_EXT):
            from safetensors import safe_open

            with safe_open(path, "pt") as f:
                return {k: (_SAFETENSORS_DTYPES.get(f.get_slice(k).get_dtype(), f.get_slice(k).get_dtype()),
                            tuple(f.get_slice(k).get_shape())) for k in f.keys()}
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        obj = flatten_state_dict(obj, path) if isinstance(obj, dict) else {}
    except Exception:  # noqa: BLE001 - a file that cannot be probed is simply not listed
        return {}
    return {k: (str(v.dtype).removeprefix("torch."), tuple(v.shape)) for k, v in obj.items()
            if isinstance(v, torch.Tensor)}


def read_file(path: str) -> tuple[dict, dict]:
    """(tensors or nested dict, metadata) from a .safetensors or torch pickle file."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder; use read_checkpoint for diffusers folders")
    low = path.lower()
    if low.endswith(SAFETENSORS_EXT):
        return _read_safetensors(path)
    if low.endswith(PICKLE_EXT):
        return _read_pickle(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"PK":
        return _read_pickle(path)
    return _read_safetensors(path)


def flatten_state_dict(obj: dict, path: str = "") -> dict:
    """The tensors of a checkpoint, with a training checkpoint's wrapper dict unwrapped.

    Accepts a plain state dict, ``{"state_dict": sd}``, ``{"model": sd}`` and friends.
    """
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for key in ("state_dict", "model", "module", "generator_ema", "generator", "ema"):
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return inner
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors:
        return tensors
    raise CheckpointError(f"{path or 'the checkpoint'} holds no tensors at its top level nor under "
                          f"'state_dict'/'model' (keys: {', '.join(list(obj)[:8])})")


def _weights_in(folder: str) -> str | None:
    names = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
             "model.safetensors", "model.fp16.safetensors",
             "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin",
             "diffusion_pytorch_model.fp16.bin", "pytorch_model.bin", "model.safetensors.index.json"]
    for n in names:
        p = os.path.join(folder, n)
        if os.path.isfile(p):
            return p
    return None


def read_diffusers_component(folder: str) -> tuple[dict, dict]:
    """State dict and config.json of one diffusers component folder (unet/, vae/, ...)."""
    weights = _weights_in(folder)
    if weights is None:
        raise CheckpointError(f"{folder} has no weights (diffusion_pytorch_model.safetensors or .bin)")
    config = {}
    cfg_path = os.path.join(folder, "config.json")
    if os.path.isfile(cfg_path):
        with open(cfg_path) as f:
            config = json.load(f)
    if weights.endswith(".index.json"):
        with open(weights) as f:
            index = json.load(f)
        sd = {}
        for shard in sorted(set(index["weight_map"].values())):
            part, _ = read_file(os.path.join(folder, shard))
            sd.update(part)
        return sd, config
    sd, _ = read_file(weights)
    return flatten_state_dict(sd, weights), config


def is_diffusers_folder(path: str) -> bool:
    return os.path.isdir(path) and (os.path.isfile(os.path.join(path, "model_index.json"))
                                    or os.path.isdir(os.path.join(path, "unet"))
                                    or os.path.isdir(os.path.join(path, "transformer")))


def read_checkpoint(path: str) -> tuple[dict, dict]:
    """(state dict, metadata) of a single file, or of the ``unet/`` of a diffusers folder."""
    if os.path.isdir(path):
        if not is_diffusers_folder(path):
            raise CheckpointError(f"{path} is a folder but not a diffusers model (no unet/ or transformer/ inside)")
        sub = "unet" if os.path.isdir(os.path.join(path, "unet")) else "transformer"
        sd, config = read_diffusers_component(os.path.join(path, sub))
        return sd, {"diffusers_config": json.dumps(config), "format": "diffusers"}
    obj, metadata = read_file(path)
    return flatten_state_dict(obj, path), metadata
