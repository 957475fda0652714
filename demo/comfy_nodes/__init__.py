"""A node for the demo's and the tests' own ComfyUI only (never installed with the pack): the demo
text encoder (demo/text_encoder.py) as a CLIP, which ``demo.run.swap_text_encoder`` puts where a
shipped workflow loads the 5.7B Wan text encoder. CLIP Text Encode, the causal sampler's live
prompts and the prompt timeline all encode through it as they would through the real one."""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "tempo_demo_text_encoder", os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "text_encoder.py"))
text_encoder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(text_encoder)


class DemoCLIP:
    """What CLIP Text Encode and Tempo's nodes call on a CLIP: tokenize, encode_from_tokens_scheduled."""

    def tokenize(self, text, **kwargs):
        return {"demo": [[(w, 1.0) for w in text_encoder.words(text)]]}

    def encode_from_tokens_scheduled(self, tokens, **kwargs):
        text = " ".join(str(t[0]) for batch in tokens.get("demo", []) for t in batch)
        return [[text_encoder.encode(text), {}]]

    def encode_from_tokens(self, tokens, return_pooled=False, **kwargs):
        cond = self.encode_from_tokens_scheduled(tokens)[0][0]
        return (cond, None) if return_pooled else cond


class TempoDemoTextEncoder:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "Tempo/demo"
    DESCRIPTION = "The demo's stand-in for the Wan text encoder (a fixed vector per word)."

    def load(self):
        return (DemoCLIP(),)


NODE_CLASS_MAPPINGS = {"TempoDemoTextEncoder": TempoDemoTextEncoder}
NODE_DISPLAY_NAME_MAPPINGS = {"TempoDemoTextEncoder": "Tempo Demo Text Encoder (stand-in)"}
