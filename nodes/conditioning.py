"""Tempo Save / Load Conditioning: text conditioning kept on disk, so later jobs (and the live page) use it
without loading the text encoder (umT5-XXL is 5.7B parameters)."""

from __future__ import annotations

import os

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
                    io.String.Input("name", default="prompt", tooltip="File name, without extension (letters, "
                                                                      "digits, - _ . only).")],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, conditioning, name) -> io.NodeOutput:
        from safetensors.torch import save_file

        safe = "".join(c for c in name if c.isalnum() or c in "-_.")[:MAX_NAME_CHARS] or "prompt"
        folder = folder_paths.get_folder_paths(CONDITIONING_FOLDER)[0]
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, safe + ".safetensors")
        if not is_inside(path, [folder]):  # a symlink in the folder pointing elsewhere
            raise TempoInputError(f"cannot save '{shown(safe)}' in models/{CONDITIONING_FOLDER}/; choose another name")
        tensors = {f"cond.{i}": c[0].contiguous().cpu() for i, c in enumerate(conditioning)}
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
        sd, _ = read_file(resolve_model_path(name, (CONDITIONING_FOLDER,), "saved conditioning"))
        return io.NodeOutput([[sd[k], {}] for k in sorted(sd, key=lambda k: int(k.split(".")[1]))])


NODES = [SaveConditioning, LoadConditioning]
