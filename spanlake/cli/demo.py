"""`spanlake demo`: send demo LLM traces to a running server, then show where to look."""

from __future__ import annotations

import argparse

from spanlake.cli.errors import CommandError
from spanlake.cli.client import Client, add_server_args
from spanlake.demo import demo_request


def cmd_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.traces <= 10_000:
        raise CommandError(f"--traces must be between 1 and 10000, got {args.traces}")
    body = demo_request(args.traces, args.seed).SerializeToString()
    with Client(args, timeout=60) as client:
        client.request("POST", "/v1/traces", ok=(200,), content=body, headers={"content-type": "application/x-protobuf"})
    print(f"sent {args.traces} demo traces ({args.traces * 5} spans) to {client.url}")
    print(f"  newest traces:   curl -s '{client.url}/api/traces?limit=5'")
    print(f"  failed LLM calls: curl -sG '{client.url}/api/spans' --data-urlencode "
          "'filter={\"field\":\"status\",\"op\":\"eq\",\"value\":\"error\"}'")
    print("  score them:       spanlake score no_errors --filter '{\"field\":\"is_root\",\"op\":\"eq\",\"value\":true}' --wait")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="send demo LLM agent traces to a running server")
    add_server_args(demo)
    demo.add_argument("--traces", type=int, default=50, help="how many traces (default 50, 5 spans each)")
    demo.add_argument("--seed", type=int, help="random seed, for the same traces every time")
    demo.set_defaults(func=cmd_demo)
