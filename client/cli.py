"""The batch client's commands on tempo.py's command line: ``run`` and ``convert``."""

from __future__ import annotations

import json
import os
import sys

from .batch import build_jobs, parse_seed_range, read_csv_jobs, read_prompts
from .runner import run_batch
from .errors import ClientError, ServerUnreachable
from .server import ComfyServer, parse_headers
from .workflow import check_api_types, load_workflow, parse_assignment, split_target, workflow_api, workflow_format

EPILOG = """exit codes: 0 all jobs succeeded; 1 a job failed; 2 bad input (workflow, override,
refused prompt, an output folder that holds another batch); 3 server unreachable (every server,
for a batch on several); 130 interrupted with Ctrl-C."""


DEFAULT_SERVER = "http://127.0.0.1:8188"


def add_server_args(p, several: bool = False):
    if several:
        p.add_argument("--server", action="append", default=[],
                       help="ComfyUI server URL; repeat it to spread the batch over several servers (one GPU "
                            f"each) (default: $COMFY_URL or {DEFAULT_SERVER})")
        p.add_argument("--servers", metavar="FILE",
                       help="a file of server URLs, one per line ('#' starts a comment); adds to --server")
    else:
        p.add_argument("--server", default=os.environ.get("COMFY_URL", DEFAULT_SERVER),
                       help=f"ComfyUI server URL (default: $COMFY_URL or {DEFAULT_SERVER})")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra HTTP header, e.g. an auth token (repeatable; $COMFY_AUTH sets Authorization)")


def add_commands(sub):
    """The client's commands, run and convert, on tempo.py's command line."""
    run = sub.add_parser("run", help="queue a workflow (UI or API format) in a batch and download its outputs",
                         epilog=EPILOG)
    run.add_argument("workflow", help="workflow .json, as saved by the editor or exported in API format")
    add_server_args(run, several=True)
    run.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                     help="override an input; NODE is a node id, title or type (repeatable)")
    run.add_argument("--seeds", help="seed sweep: 1-8, 100x8 (start and count) or 1,5,9")
    run.add_argument("--seed-input", action="append", metavar="NODE.INPUT",
                     help="where the seeds go (default: every seed / noise_seed input)")
    run.add_argument("--prompts", metavar="FILE", help="prompt sweep: a text file with one prompt per line")
    run.add_argument("--prompt-input", action="append", metavar="NODE.INPUT",
                     help="where the prompts go (default: the positive prompt's text encoder)")
    run.add_argument("--csv", metavar="FILE", help="one job per row; column headers are NODE.INPUT targets")
    run.add_argument("--output", "-o", default="tempo_output", help="folder for outputs and manifest.jsonl")
    run.add_argument("--upload", action="append", default=[], metavar="FILE",
                     help="upload a local picture to every server's input folder first (for LoadImage; repeatable)")
    run.add_argument("--keep-going", action="store_true", help="run the remaining jobs when one fails")
    run.add_argument("--retries", type=int, default=0, metavar="N",
                     help="try a job that fails on its own merits N more times (default 0: a failure is "
                          "reported, not retried blindly); a job whose server stops answering always moves to "
                          "another server")
    run.add_argument("--resume", action="store_true",
                     help="finish the batch in --output: skip the jobs whose outputs are complete there and run "
                          "the rest (without it, a folder that already holds a batch is refused)")
    ray = run.add_argument_group("Ray (a batch over a cluster's GPUs; needs: pip install ray)")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run the jobs on Ray workers, one ComfyUI each (one per GPU): alone, a local Ray on this "
                          "machine; 'auto' or ray://HOST:PORT (or HOST:PORT), an existing cluster. With --server, "
                          "one worker attaches to each listed server instead of starting a ComfyUI")
    ray.add_argument("--ray-workers", type=int, metavar="N",
                     help="how many ComfyUI workers (default: one per GPU in the cluster, else 1)")
    ray.add_argument("--ray-comfyui", metavar="PATH",
                     help="the ComfyUI folder each worker starts, the same path on every node (default: "
                          "$COMFYUI_PATH, or the ComfyUI this pack sits in); its custom nodes and models are used")
    ray.add_argument("--ray-models", action="append", default=[], metavar="DIR",
                     help="another models folder (with checkpoints/, loras/, ...) for the workers (repeatable)")
    ray.add_argument("--ray-cpus", type=float, default=1.0, metavar="N",
                     help="CPUs each worker takes where the cluster has no GPU (default 1)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--live", action="store_true",
                     help="print the server's live page (causal videos play there while they are made)")
    run.add_argument("--open", action="store_true", help="with --live: open the live page in a browser")

    conv = sub.add_parser("convert", help="print a UI-format workflow in the API format")
    conv.add_argument("workflow")
    add_server_args(conv)

    run.set_defaults(func=cmd_run)
    conv.set_defaults(func=cmd_convert)


def server_urls(args) -> list[str]:
    """--server (repeated) and the URLs in --servers FILE, in order, without repeats."""
    urls = list(args.server)
    if args.servers:
        try:
            with open(args.servers, encoding="utf-8") as f:
                urls += [line.split("#", 1)[0].strip() for line in f if line.split("#", 1)[0].strip()]
        except OSError as e:
            raise ClientError(f"cannot read the server list {args.servers}: {e.strerror}") from None
    if not urls:
        urls = [os.environ.get("COMFY_URL", DEFAULT_SERVER)]
    return list(dict.fromkeys(u.rstrip("/") for u in urls))


def connect(urls: list[str], headers: dict, log) -> list[ComfyServer]:
    """A client per server. A server that cannot be reached at the start is left out (and said);
    every other one must offer the node types the first one offers for this workflow."""
    servers, unreachable = [], []
    for url in urls:
        server = ComfyServer(url, headers)
        try:
            server.object_info()
        except ServerUnreachable as e:
            unreachable.append(e)
            continue
        servers.append(server)
    if not servers:
        raise unreachable[0] if len(unreachable) == 1 else ServerUnreachable(
            "cannot reach any of the servers: " + "; ".join(str(e) for e in unreachable))
    for e in unreachable:
        log(f"left out: {e}")
    return servers


def cmd_run(args) -> int:
    def log(m):
        print(m, file=sys.stderr)

    if args.ray is not None:
        return run_on_ray(args, log)
    servers = connect(server_urls(args), parse_headers(args.header), log)
    first = servers[0]
    ui = load_workflow(args.workflow)
    api = first.workflow_as_api(args.workflow)
    for other in servers[1:]:
        check_api_types(api, other.object_info(), other.url)
    for path in args.upload:
        for server in servers:  # any server may run any job
            print(f"uploaded {path} to {server.url} as {server.upload_image(path)}", file=sys.stderr)
    jobs = jobs_of(args, api)
    if args.live or args.open:
        for server in servers:
            page = live_page_url(server.url)
            print(f"watch live: {page} (every causal video on this server is listed there while it is made)",
                  file=sys.stderr)
        if args.open:
            import webbrowser

            webbrowser.open(live_page_url(first.url))
    print(f"queueing {len(jobs)} job(s) on {', '.join(s.url for s in servers)}", file=sys.stderr)
    return run_and_report(args, servers, api, jobs, ui, log)


def run_on_ray(args, log) -> int:
    """The same batch, placed on Ray workers (client/ray_pool.py)."""
    from .ray_pool import RayPool, import_ray

    import_ray()  # first: without Ray, say what to install before anything else
    if args.ray_workers is not None and args.ray_workers < 1:
        raise ClientError(f"--ray-workers {args.ray_workers}: give 1 or more")
    address = None if args.ray == "local" else args.ray
    urls = list(dict.fromkeys(u.rstrip("/") for u in args.server)) if args.server else None
    ui = load_workflow(args.workflow)
    with RayPool(address, workers=args.ray_workers, comfyui=args.ray_comfyui, models=args.ray_models, urls=urls,
                 headers=parse_headers(args.header), uploads=args.upload, cpus=args.ray_cpus, log=log) as pool:
        api = workflow_api(ui, args.workflow, pool.object_info(), "the Ray workers' ComfyUI")
        jobs = jobs_of(args, api)
        log(f"queueing {len(jobs)} job(s) on {len(pool.actors)} Ray worker(s)")
        return run_and_report(args, pool, api, jobs, ui, log)


def jobs_of(args, api: dict) -> list[dict]:
    """The batch's jobs (override dicts) from --set, --seeds, --prompts and --csv."""
    sets = {}
    for s in args.set:
        node, name, value = parse_assignment(s)
        sets[f"{node}.{name}"] = value
    for t in (args.seed_input or []) + (args.prompt_input or []):
        split_target(t)
    if args.retries < 0:
        raise ClientError(f"--retries {args.retries}: give 0 or more")
    return build_jobs(api, sets=sets,
                      seeds=parse_seed_range(args.seeds) if args.seeds else None, seed_targets=args.seed_input,
                      prompts=read_prompts(args.prompts) if args.prompts else None,
                      prompt_targets=args.prompt_input,
                      rows=read_csv_jobs(args.csv) if args.csv else None)


def run_and_report(args, servers, api: dict, jobs: list[dict], ui: dict, log) -> int:
    """Run the batch on ``servers`` (listed servers or Ray workers) and say where its files are."""
    results = run_batch(servers, api, jobs, args.output, keep_going=args.keep_going, progress=not args.quiet,
                        log=log, retries=args.retries, existing="resume" if args.resume else "refuse",
                        ui=ui if workflow_format(ui, args.workflow) == "ui" else None)
    n_files = sum(len(r.files) for r in results)
    print(f"{len(results)} job(s) done, {n_files} file(s) in {os.path.abspath(args.output)} "
          f"(manifest: {os.path.join(os.path.abspath(args.output), 'manifest.jsonl')})")
    return 0


def live_page_url(server_url: str) -> str:
    """The pack's live page on a server (routes registered by the pack under /tempo/live)."""
    return server_url.rstrip("/") + "/tempo/live/"


def cmd_convert(args) -> int:
    server = ComfyServer(args.server, parse_headers(args.header))
    json.dump(server.workflow_as_api(args.workflow), sys.stdout, indent=2)
    print()
    return 0


def main(func, args) -> int:
    """Run one command; errors become the exit codes in EPILOG."""
    try:
        return func(args)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
