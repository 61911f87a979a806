"""`python -m connectors.sandbox '{"seed": 1, "leads": 1000}'`: serve a sandbox in this process
and print one JSON line with its info (used by SandboxProcess; people use `leadgate sandbox`)."""

from __future__ import annotations

import json
import sys

from .sandbox import Sandbox, serve_until_signalled


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("-"):  # --help and the like: not JSON
        sys.exit("usage: python -m connectors.sandbox ['{\"seed\": 1, \"leads\": 1000}']\n"
                 "(an internal entry point: people use `leadgate sandbox serve --help`)")
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    sandbox = Sandbox(**options)

    def started(sb: Sandbox) -> None:
        print(json.dumps({**sb.info(), "admin_token": sb.admin_token}), flush=True)

    serve_until_signalled(sandbox, started)
    print(json.dumps({"counts": sandbox.counts()}), flush=True)


if __name__ == "__main__":
    main()
