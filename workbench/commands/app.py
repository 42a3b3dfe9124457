"""`workbench app`: serve the workbench web app (127.0.0.1:7860 by default, no share link).

workbench app                                   # http://127.0.0.1:7860
workbench app --port 8080 --runs-dir my-runs
workbench app --host 0.0.0.0 --auth alice:secret   # other machines may connect, with a password

A host other than loopback is refused without --auth unless --insecure is given. The app serves files only from
the runs and exports folders, and uploads are capped at --max-file-size.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

from workbench.config import BUILTIN_TEACHER, DEFAULT_STUDENT
from workbench.errors import UserError
from workbench.hub import PROBE_TIMEOUT_S, hub_offline, hub_reachable

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "200mb"


def register(subparsers) -> None:
    parser = subparsers.add_parser("app", help="Serve the workbench web app.", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"Address to bind (default {DEFAULT_HOST}).")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT}).")
    parser.add_argument("--auth", default=None, help="Require a login, as user:password (or set WORKBENCH_AUTH).")
    parser.add_argument("--insecure", action="store_true",
                        help="Allow a non-loopback --host without --auth (anyone who can reach it can train).")
    parser.add_argument("--runs-dir", default="runs", help="Folder of run folders (default runs).")
    parser.add_argument("--exports-dir", default="exports", help="Folder for exported models (default exports).")
    parser.add_argument("--teacher", default=BUILTIN_TEACHER, help="Teacher the pickers start with.")
    parser.add_argument("--student", default=DEFAULT_STUDENT, help="Student the pickers start with.")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="Largest upload, e.g. 200mb.")
    parser.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth must look like user:password with both parts non-empty")
    return user, password


def launch_options(host: str, port: int, auth: str | None, insecure: bool, runs_dir: str, exports_dir: str,
                   max_file_size: str = DEFAULT_MAX_FILE_SIZE) -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch` with the security defaults; refuses an open non-loopback bind."""
    credentials = parse_auth(auth)
    if not host.strip():
        # gradio would fall back to $GRADIO_SERVER_NAME, which may be 0.0.0.0
        raise UserError(f"--host must name an address to bind, e.g. {DEFAULT_HOST}; got an empty value")
    if not is_loopback(host) and credentials is None and not insecure:
        raise UserError(f"--host {host} exposes the app beyond this machine; add --auth user:password "
                        "(or --insecure if you really want no login)")
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be in 1..65535, got {port}")
    for folder in (runs_dir, exports_dir):
        Path(folder).mkdir(parents=True, exist_ok=True)
    from workbench.app import CSS, THEME
    from workbench.app.i18n import build_i18n

    return dict(
        server_name=host, server_port=port, share=False, auth=credentials, max_file_size=max_file_size,
        allowed_paths=[str(Path(runs_dir).resolve()), str(Path(exports_dir).resolve())],
        show_error=True, css=CSS, theme=THEME, footer_links=["api", "settings"], i18n=build_i18n(),
    )


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, a port something else already listens on (gradio would end in a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closing socket is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserError(f"--port {port} is not free on {host} ({error.strerror}): another app (perhaps another "
                            f"workbench) is using it; pass another, e.g. --port {port + 1}") from None


def hub_mode() -> str:
    """Decide once whether the app uses the Hugging Face hub and say which: HF_HUB_OFFLINE as the user set it, else a
    short probe (`workbench.hub`), whose answer is written to HF_HUB_OFFLINE so every later check agrees."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip():
        online = not hub_offline()
        how = f"HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE'].strip()} as set"
    else:
        online = hub_reachable()
        os.environ["HF_HUB_OFFLINE"] = "0" if online else "1"
        how = ("it answered; HF_HUB_OFFLINE=1 forces offline" if online else
               f"no answer within {PROBE_TIMEOUT_S:g} s; HF_HUB_OFFLINE=0 forces a try")
    what = ("hub ids typed in the app are downloaded" if online else
            "hub ids must already be in the local cache; built-in models and local folders work")
    return f"Hugging Face hub: {'online' if online else 'offline'} ({how}): {what}"


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    print(hub_mode(), flush=True)
    options = launch_options(args.host, args.port, args.auth or os.environ.get("WORKBENCH_AUTH"), args.insecure,
                             args.runs_dir, args.exports_dir, args.max_file_size)
    check_port(args.host, args.port)
    from workbench.app import build_app

    demo = build_app(runs_dir=args.runs_dir, exports_dir=args.exports_dir, teacher=args.teacher,
                     student=args.student)
    print(f"KD Workbench on http://{args.host}:{args.port}" + (" (login required)" if options["auth"] else ""))
    demo.queue(default_concurrency_limit=4).launch(**options)
    return 0
