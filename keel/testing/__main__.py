"""`python -m keel.testing`: a fake OpenAI and Anthropic endpoint that echoes the prompt."""

import argparse
import sys
import threading
from collections.abc import Sequence

from keel.testing.server import WireServer

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the echo responder until interrupted (Ctrl-C)."""
    parser = argparse.ArgumentParser(
        prog="python -m keel.testing",
        description="Serve a fake OpenAI and Anthropic API that answers with the prompt.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9999, help="port; 0 picks a free one")
    args = parser.parse_args(argv)
    with WireServer(host=args.host, port=args.port, verbose=True) as server:
        sys.stdout.write(
            f"OpenAI base_url:    {server.openai_base_url}\n"
            f"Anthropic base_url: {server.anthropic_base_url}\n"
        )
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
