"""Tempo Save / Load Conditioning: text conditioning kept on disk, so later jobs (and the live page) use it
without loading the text encoder (umT5-XXL is 5.7B parameters)."""

from __future__ import annotations

import os

import torch

import folder_paths

from ..loaders.files import read_file
from ..loaders.paths import MAX_NAME_CHARS, is_inside, shown
from .common import CATEGORY, CONDITIONING_FOLDER, TempoInputError, resolve_model_path
from .compat import io, ui


def register_folders():
    if CONDITIONING_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(CONDITIONING_FOLDER, os.path.join(folder_paths.models_dir, CONDITIONING_FOLDER))
        folder_paths.folder_names_and_paths[CONDITIONING_FOLDER] = (
            folder_paths.folder_names_and_paths[CONDITIONING_FOLDER][0], {".safetensors"})


register_folders()


def name_problem(name: str):
    """What is wrong with a Save Conditioning name, or None: a plain file name, no folders."""
    name = name.strip()
    if not name:
        return "name is empty; give the prompt a file name, e.g. 'fox'"
    if len(name) > MAX_NAME_CHARS:
        return f"name is {len(name)} characters long; use at most {MAX_NAME_CHARS}"
    bad = sorted({c for c in name if not (c.isascii() and c.isalnum()) and c not in "-_."})
    if bad or name.startswith("."):
        what = f"'{shown(''.join(bad))}'" if bad else "a leading '.'"
        return (f"name '{shown(name)}' has {what}; use letters, digits, - _ and . only (no folders: the file goes in "
                f"models/{CONDITIONING_FOLDER}/)")
    return None


def read_conditioning(path: str) -> list:
    """The conditioning tensors of a file Save Conditioning wrote, in order ('cond.0', 'cond.1', ...),
    each [batch, tokens, width]; anything else is refused with what the file holds."""
    sd, _ = read_file(path)
    index = {}
    for key, value in sd.items():
        head, _, num = key.partition(".")
        if head != "cond" or not num.isdecimal() or not isinstance(value, torch.Tensor) or value.ndim != 3:
            index = None
            break
        index[int(num)] = value
    if not index or sorted(index) != list(range(len(index))):
        keys = ", ".join(sorted(sd)[:4]) or "nothing"
        raise TempoInputError(f"{shown(os.path.basename(path))} is not a saved conditioning (it holds {keys}); save "
                              "prompts with 'Tempo Save Conditioning', which writes cond.0, cond.1, ...")
    return [index[i] for i in range(len(index))]


class SaveConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoSaveConditioning",
            display_name="Tempo Save Conditioning",
            category=CATEGORY + "/utils",
            description="Saves an encoded prompt to models/tempo_conditioning/, so later jobs can reuse it without "
                        "loading the text encoder (Wan's umT5-XXL is 5.7B parameters).",
            inputs=[io.Conditioning.Input("conditioning", tooltip="From CLIP Text Encode."),
                    io.String.Input("name", default="prompt",
                                    tooltip="File name, without extension (letters, digits, - _ . only).")],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, name=None, **_):
        problem = name_problem(name) if isinstance(name, str) else None
        return True if problem is None else problem

    @classmethod
    def execute(cls, conditioning, name) -> io.NodeOutput:
        from safetensors.torch import save_file

        problem = name_problem(name)
        if problem:
            raise TempoInputError(problem)
        safe = name.strip()
        tensors = {}
        for i, c in enumerate(conditioning if isinstance(conditioning, list) else []):
            t = c[0] if isinstance(c, (list, tuple)) and c else None
            if getattr(t, "ndim", 0) != 3:
                break
            tensors[f"cond.{i}"] = t.contiguous().cpu()
        if not tensors or len(tensors) != len(conditioning):
            raise TempoInputError("conditioning is not text conditioning; connect CLIP Text Encode")
        folder = folder_paths.get_folder_paths(CONDITIONING_FOLDER)[0]
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, safe + ".safetensors")
        if not is_inside(path, [folder]):  # a symlink in the folder pointing elsewhere
            raise TempoInputError(f"cannot save '{shown(safe)}' in models/{CONDITIONING_FOLDER}/; choose another name")
        save_file(tensors, path)
        return io.NodeOutput(ui=ui.PreviewText(f"saved {safe}.safetensors"))


class LoadConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoLoadConditioning",
            display_name="Tempo Load Conditioning",
            category=CATEGORY + "/utils",
            description="Loads a prompt saved by 'Tempo Save Conditioning', so no text encoder needs loading.",
            inputs=[io.Combo.Input("name", options=folder_paths.get_filename_list(CONDITIONING_FOLDER),
                                   tooltip="A saved prompt in models/tempo_conditioning/.")],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, name) -> io.NodeOutput:
        conds = read_conditioning(resolve_model_path(name, (CONDITIONING_FOLDER,), "saved conditioning"))
        return io.NodeOutput([[c, {}] for c in conds])


NODES = [SaveConditioning, LoadConditioning]
