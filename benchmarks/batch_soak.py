"""Soak: many tiny one-step jobs spread over two servers by the batch client.

    python benchmarks/batch_soak.py                 # 1000 jobs, 64x64, two local CPU servers
    python benchmarks/batch_soak.py --jobs 200 --size 128
    python benchmarks/batch_soak.py --ray --jobs 40 # the Ray path beside the plain client, in one run

Starts two local ComfyUIs (COMFYUI_PATH) with the demo models, warms each with one job (models
load), then runs one batch of --jobs txt2img jobs (a seed each) through ``runner.run_batch`` on both.
Reports jobs/s, lost outputs (jobs without a complete file on disk; target 0), how the jobs were
shared, and each server process's resident memory after the warm-up and after the batch (target:
flat). Not a test: it times, and its numbers go to the README's benchmark table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()
import psutil  # noqa: E402

from tempo_pack.client import ComfyServer, workflow  # noqa: E402
from tempo_pack.client import runner  # noqa: E402
from tempo_pack.client.local import PACK_ROOT, LocalComfyUI  # noqa: E402
from tempo_pack.demo import run as demo_run  # noqa: E402


def rss_mib(local: LocalComfyUI) -> float:
    return psutil.Process(local.proc.pid).memory_info().rss / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--ray", action="store_true", help="time the Ray path (1 and 2 workers) beside the plain client")
    args = p.parse_args()
    demo_run.ensure_demo_models(demo_run.DEMO_MODELS, None, log=lambda m: None)
    if args.ray:
        return ray_side_by_side(args)
    wf = workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json"))
    size = {"EmptyLatentImage.width": args.size, "EmptyLatentImage.height": args.size}
    locals_ = [LocalComfyUI(models=[demo_run.DEMO_MODELS]) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.start(), locals_))
        servers = [ComfyServer(s.url) for s in locals_]
        api = workflow.to_api(wf, servers[0].object_info())
        with tempfile.TemporaryDirectory() as tmp:
            for i, s in enumerate(servers):  # warm-up: models load once per server
                runner.run_batch(s, api, [{**size, "7.noise_seed": 10**6 + i}], os.path.join(tmp, f"warm{i}"),
                                 progress=False, ui=wf)
            before = [rss_mib(s) for s in locals_]
            jobs = [{**size, "7.noise_seed": seed} for seed in range(args.jobs)]
            out = os.path.join(tmp, "out")
            t0 = time.perf_counter()
            results = runner.run_batch(servers, api, jobs, out, progress=False, ui=wf, log=lambda m: print(m))
            seconds = time.perf_counter() - t0
            after = [rss_mib(s) for s in locals_]
            lines = [json.loads(l) for l in open(os.path.join(out, runner.MANIFEST))]
            lost = [r for r in results if not runner.complete_on_disk(out, {"status": r.status, "files": r.files})
                    or not r.files]
            share = {s.url: sum(r.server == s.url for r in results) for s in servers}
        print(f"{args.jobs} jobs of {args.size}x{args.size} on 2 servers (CPU): {seconds:.1f} s, "
              f"{args.jobs / seconds:.2f} jobs/s; manifest lines {len(lines)}; lost outputs {len(lost)}")
        for s, n, b, a in zip(servers, share.values(), before, after):
            print(f"  {s.url}: {n} jobs; server RSS {b:.0f} MiB after warm-up -> {a:.0f} MiB after the batch "
                  f"({a - b:+.0f} MiB)")
        return 0 if not lost else 1
    finally:
        for s in locals_:
            s.stop()
            s.cleanup()


def ray_side_by_side(args) -> int:
    """The same jobs, one run: the plain client on 1 and 2 local servers, then Ray with 1 and 2 workers
    (each starting its own ComfyUI). Each placement is warmed with one job per server first (models
    load), so the figures are of the steady batch: jobs/s, and Ray's cost per job against the plain
    client with as many servers."""
    from tempo_pack.client.local import find_comfyui
    from tempo_pack.client.ray_pool import RayPool

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    wf = workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json"))
    size = {"EmptyLatentImage.width": args.size, "EmptyLatentImage.height": args.size}
    jobs = [{**size, "7.noise_seed": seed} for seed in range(args.jobs)]
    rows = {}

    def timed(name, placement, n_warm):
        api = workflow.to_api(wf, placement.object_info() if hasattr(placement, "workers")
                              else placement[0].object_info())
        with tempfile.TemporaryDirectory() as tmp:
            runner.run_batch(placement, api, [{**size, "7.noise_seed": 10**6 + i} for i in range(2 * n_warm)],
                             os.path.join(tmp, "warm"), progress=False, ui=wf, log=lambda m: None)
            t0 = time.perf_counter()
            results = runner.run_batch(placement, api, jobs, os.path.join(tmp, "out"), progress=False, ui=wf,
                                       log=lambda m: None)
            rows[name] = time.perf_counter() - t0
            assert all(r.status == "success" for r in results)

    locals_ = [LocalComfyUI(models=[demo_run.DEMO_MODELS]) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.start(), locals_))
        servers = [ComfyServer(s.url) for s in locals_]
        timed("plain client, 1 server", servers[:1], 1)
        timed("plain client, 2 servers", servers, 2)
    finally:
        for s in locals_:
            s.stop()
            s.cleanup()
    for n in (1, 2):
        with RayPool(None, workers=n, comfyui=find_comfyui(), models=[demo_run.DEMO_MODELS], log=lambda m: None) as rp:
            timed(f"Ray, {n} worker{'s' if n > 1 else ''}", rp, n)
    print(f"{args.jobs} jobs of {args.size}x{args.size}, CPU ({os.cpu_count()} cores), one run:")
    print("| placement | seconds | jobs/s | per job vs the plain client with as many servers |")
    print("|---|---|---|---|")
    for name, seconds in rows.items():
        n = 2 if "2" in name else 1
        base = rows[f"plain client, {n} server{'s' if n > 1 else ''}"]
        extra = "" if name.startswith("plain") else f"{(seconds - base) / args.jobs * 1000:+.0f} ms"
        print(f"| {name} | {seconds:.1f} | {args.jobs / seconds:.2f} | {extra} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
