"""Verb ``app``: the guided walk as a standalone page on localhost, served by Voilà."""

from __future__ import annotations

import subprocess

from ..cli import add_verb


def _app(args):
    from .._deps import require
    from ..exceptions import ConfigError
    from ..widgets.app import voila_command, voila_environment, write_walk_notebook

    require("voila", "serve the walk as a web page")
    notebook = write_walk_notebook(args.project_dir, quick=not args.full)
    url = f"http://{args.ip}:{args.port}/"
    print(f"Serving the fastml-lab walk at {url}\n"
          f"  project folder: {notebook.parent.resolve()}\n"
          "  open the address in a browser; Ctrl-C stops the server.", flush=True)
    code = subprocess.call(voila_command(notebook, args.port, args.ip), env=voila_environment())
    if code not in (0, -2, 130):  # -2 / 130: stopped with Ctrl-C
        raise ConfigError(f"Voilà stopped with exit code {code}; if port {args.port} is in use, "
                          "choose another with --port.")


def register(sub):
    from ..widgets import DEFAULT_PROJECT_DIR
    from ..widgets.app import DEFAULT_PORT

    p = add_verb(sub, "app", _app, "serve the guided walk (data to overlay) as a web page with Voilà")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on localhost (default: %(default)s)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--project-dir", default=DEFAULT_PROJECT_DIR,
                   help="folder where the walk keeps its work (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="start with full settings instead of quick ones")
