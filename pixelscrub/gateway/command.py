"""``pixelscrub serve``: its arguments, its TOML configuration file, and its run loop.

A configuration file holds the command's long options by name (``forward``,
``spool``, ``mode``, ``rules``, ``allow``, ``retain-device-id`` ...); options given
on the command line win over it.  An unknown key is an error, so a misspelt
option never silently leaves PHI in place.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any, Optional

from ..errors import ScrubError

__all__ = ["add_serve_parser", "config_defaults", "run_serve"]


def add_serve_parser(sub, add_scrub_options, add_header_arguments) -> argparse.ArgumentParser:
    g = sub.add_parser(
        "serve", help="run a DICOM gateway: receive, scrub, forward",
        description="Receive DICOM instances (C-STORE, C-ECHO), spool each to disk before "
                    "acknowledging it, scrub it with the same options as `scrub`, and "
                    "forward clean instances to a destination. A restart resumes the spool.",
        epilog="Instances that fail go to SPOOL/quarantine with a reason; outputs that are "
               "not certified are held in SPOOL/unverified and never forwarded.")
    g.add_argument("--config", metavar="FILE.toml",
                   help="TOML file with any of these options by their long name")
    g.add_argument("--forward", metavar="AET@HOST:PORT", help="where clean instances go (required)")
    g.add_argument("--spool", metavar="DIR", help="the durable spool folder (required)")
    g.add_argument("--aet", default="PIXELSCRUB", help="this gateway's AE title (default PIXELSCRUB)")
    g.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    g.add_argument("--port", type=int, default=11112, help="port to listen on (default 11112)")
    g.add_argument("--allow", action="append", default=[], metavar="AET",
                   help="calling AE title allowed to send (repeat; default: any)")
    g.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="scrub worker processes (default: all cores)")
    g.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="give up on an instance after this long (0: no limit)")
    g.add_argument("--max-memory", type=int, default=None, metavar="MB",
                   help="cap each worker's address space (default as for scrub; 0: no cap)")
    g.add_argument("--documents", choices=("scrub", "refuse"), default="scrub",
                   help="encapsulated PDFs: scrub them (default) or refuse them")
    g.add_argument("--no-header", action="store_true", help="leave the header as it is")
    g.add_argument("--no-pixels", action="store_true", help="leave the pixels as they are")
    tls = g.add_argument_group("TLS")
    tls.add_argument("--tls-cert", metavar="PEM", help="certificate to listen with TLS")
    tls.add_argument("--tls-key", metavar="PEM", help="its private key")
    tls.add_argument("--tls-ca", metavar="PEM",
                     help="require senders to show a certificate signed by this CA")
    tls.add_argument("--forward-tls", action="store_true", help="forward over TLS")
    tls.add_argument("--forward-tls-ca", metavar="PEM", help="CA that signed the destination's "
                                                             "certificate (default: system CAs)")
    tls.add_argument("--forward-tls-cert", metavar="PEM", help="certificate to show the destination")
    tls.add_argument("--forward-tls-key", metavar="PEM", help="its private key")
    g.add_argument("--retry-max", type=float, default=60.0, metavar="SECONDS",
                   help="longest pause between forwarding attempts (default 60)")
    g.add_argument("--max-attempts", type=int, default=5, metavar="N",
                   help="times an instance the destination refuses is tried before it is "
                        "quarantined (default 5)")
    g.add_argument("--status-port", type=int, default=None, metavar="PORT",
                   help="serve queue depth and counts as JSON at http://127.0.0.1:PORT/status")
    add_scrub_options(g)
    add_header_arguments(g)
    return g


def config_defaults(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """The defaults a TOML configuration file gives ``parser``'s options."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ScrubError(f"{path}: cannot read the configuration ({exc.strerror})", reason="config")
    except tomllib.TOMLDecodeError as exc:
        raise ScrubError(f"{path}: not valid TOML ({exc})", reason="config")
    actions = {a.dest: a for a in parser._actions}
    out = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None or dest in ("help", "config"):
            raise ScrubError(f"{path}: unknown option {key!r}", reason="config")
        out[dest] = _converted(action, value, path, key)
    return out


def _converted(action: argparse.Action, value: Any, path: str, key: str) -> Any:
    if isinstance(action, argparse._AppendAction):
        values = value if isinstance(value, list) else [value]
        return [action.type(str(v)) if action.type else str(v) for v in values]
    if action.nargs == 0:  # a switch
        if not isinstance(value, bool):
            raise ScrubError(f"{path}: {key} must be true or false", reason="config")
        return value
    try:
        return action.type(str(value)) if action.type else value
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        raise ScrubError(f"{path}: bad value for {key}: {exc}", reason="config")


def _say(text: str) -> None:
    print(f"pixelscrub serve: {text}", file=sys.stderr, flush=True)


def run_serve(args, options_from_args) -> int:
    """Run the gateway until SIGTERM or Ctrl-C; returns the exit status."""
    from .forward import Destination
    from .service import Gateway, GatewayConfig

    if not args.forward or not args.spool:
        raise ScrubError("serve needs --forward AET@HOST:PORT and --spool DIR "
                         "(on the command line or in --config)", reason="usage")
    if not args.no_header and not (getattr(args, "key_file", None) or os.environ.get("PIXELSCRUB_KEY")):
        raise ScrubError("serve needs a fixed key (PIXELSCRUB_KEY or --key-file), so that UIDs "
                         "and pseudonyms agree across associations and restarts", reason="no-key")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ScrubError("--tls-cert and --tls-key go together", reason="usage")
    options = options_from_args(args, warn=lambda t: _say(f"warning: {t}"))
    config = GatewayConfig(
        spool=Path(args.spool), forward=Destination.parse(args.forward), aet=args.aet,
        host=args.host, port=args.port, allow=tuple(args.allow),
        jobs=args.jobs or os.cpu_count() or 1, timeout=args.timeout or None,
        max_memory=None if args.max_memory is None else args.max_memory * 2**20,
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca,
        forward_tls=args.forward_tls or bool(args.forward_tls_ca),
        forward_tls_ca=args.forward_tls_ca, forward_tls_cert=args.forward_tls_cert,
        forward_tls_key=args.forward_tls_key, retry_max=args.retry_max,
        max_attempts=args.max_attempts, status_port=args.status_port)
    gateway = Gateway(config, options, log=_say)
    stopped = threading.Event()
    try:
        gateway.start()
        if config.status_port is not None:
            _say(f"status at http://{config.status_host}:{config.status_port}/status")
        while not stopped.wait(3600):
            pass
    except KeyboardInterrupt:
        _say("stopping")
    finally:
        gateway.stop()
    return 0


def with_config(parser: argparse.ArgumentParser, argv: Optional[list]) -> argparse.Namespace:
    """Parse ``argv``; for ``serve --config FILE``, with the file's options as defaults."""
    args = parser.parse_args(argv)
    if getattr(args, "command", None) != "serve" or not args.config:
        return args
    serve = parser._subparsers._group_actions[0].choices["serve"]
    serve.set_defaults(**config_defaults(serve, args.config))
    return parser.parse_args(argv)
