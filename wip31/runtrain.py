import sys, importlib.util, time
spec = importlib.util.spec_from_file_location("tempo_pack", "/work/wip/__init__.py", submodule_search_locations=["/work/wip"])
m = importlib.util.module_from_spec(spec); sys.modules["tempo_pack"] = m; spec.loader.exec_module(m)
from tempo_pack.demo import train
train.train("/tmp/demo_train2/causal_demo.safetensors", comfyui="/opt/ComfyUI-0.27", log=lambda s: print(s, flush=True))
