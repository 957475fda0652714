"""The batch client's commands on tempo.py's command line: ``run`` and ``convert``."""

from __future__ import annotations

import json
import os
import sys

from .batch import build_jobs, parse_seed_range, read_csv_jobs, read_prompts, run_batch
from .errors import ClientError
from .server import ComfyServer, parse_headers
from .workflow import parse_assignment, split_target

EPILOG = """exit codes: 0 all jobs succeeded; 1 a job failed; 2 bad input (workflow, override,
refused prompt); 3 server unreachable; 130 interrupted with Ctrl-C."""


def add_server_args(p):
    p.add_argument("--server", default=os.environ.get("COMFY_URL", "http://127.0.0.1:8188"),
                   help="ComfyUI server URL (default: $COMFY_URL or http://127.0.0.1:8188)")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra HTTP header, e.g. an auth token (repeatable; $COMFY_AUTH sets Authorization)")


def add_commands(sub):
    """The client's commands, run and convert, on tempo.py's command line."""
    run = sub.add_parser("run", help="queue a workflow (UI or API format) in a batch and download its outputs",
                         epilog=EPILOG)
    run.add_argument("workflow", help="workflow .json, as saved by the editor or exported in API format")
    add_server_args(run)
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
                     help="upload a local picture to the server's input folder first (for LoadImage; repeatable)")
    run.add_argument("--keep-going", action="store_true", help="run the remaining jobs when one fails")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--live", action="store_true",
                     help="print the server's live page (causal videos play there while they are made)")
    run.add_argument("--open", action="store_true", help="with --live: open the live page in a browser")

    conv = sub.add_parser("convert", help="print a UI-format workflow in the API format")
    conv.add_argument("workflow")
    add_server_args(conv)

    run.set_defaults(func=cmd_run)
    conv.set_defaults(func=cmd_convert)


def cmd_run(args) -> int:
    server = ComfyServer(args.server, parse_headers(args.header))
    api = server.workflow_as_api(args.workflow)
    for path in args.upload:
        print(f"uploaded {path} as {server.upload_image(path)}", file=sys.stderr)
    sets = {}
    for s in args.set:
        node, name, value = parse_assignment(s)
        sets[f"{node}.{name}"] = value
    for t in (args.seed_input or []) + (args.prompt_input or []):
        split_target(t)
    jobs = build_jobs(api, sets=sets,
                      seeds=parse_seed_range(args.seeds) if args.seeds else None, seed_targets=args.seed_input,
                      prompts=read_prompts(args.prompts) if args.prompts else None,
                      prompt_targets=args.prompt_input,
                      rows=read_csv_jobs(args.csv) if args.csv else None)
    if args.live or args.open:
        page = live_page_url(server.url)
        print(f"watch live: {page} (every causal video on this server is listed there while it is made)",
              file=sys.stderr)
        if args.open:
            import webbrowser

            webbrowser.open(page)
    print(f"queueing {len(jobs)} job(s) on {server.url}", file=sys.stderr)
    results = run_batch(server, api, jobs, args.output, keep_going=args.keep_going, progress=not args.quiet,
                        log=lambda m: print(m, file=sys.stderr))
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
