"""``ddsearch serve``: the ASGI app (:mod:`.api`) on uvicorn, over one :class:`Service`."""

from __future__ import annotations

import socket

from ddsearch.config import ServeSettings
from ddsearch.errors import UserError
from ddsearch.serve.hosts import is_loopback
from ddsearch.service import Service


class Server:
    """A bound socket and the app, not yet serving: ``url`` is known (port 0 picks a free
    port) before ``run()`` blocks until Ctrl-C or SIGTERM."""

    def __init__(self, service: Service, host: str = ServeSettings.host,
                 port: int = ServeSettings.port, *, token: str | None = None, cors_origins=(),
                 quiet: bool = False):  # fmt: skip
        self.check(host, token)
        from ddsearch.serve.api import create_app

        self.host = host.strip("[]")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((self.host, port))
            self.socket.listen(2048)
        except OSError:
            self.socket.close()
            raise
        self.app = create_app(service, token=token, cors_origins=cors_origins, host=self.host)
        self.quiet = quiet

    @staticmethod
    def check(host: str, token: str | None) -> None:
        """Beyond loopback, only with a token: anyone who can reach the port could search."""
        if not is_loopback(host) and not token:
            raise UserError(
                f"refusing to listen on {host} without a token",
                "pass --token or set DDSEARCH_TOKEN (or listen on 127.0.0.1)",
            )

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self) -> None:
        import logging

        import uvicorn

        from ddsearch import __version__

        config = uvicorn.Config(
            self.app,
            log_level="warning" if self.quiet else "info",
            access_log=not self.quiet,
            server_header=False,
            headers=[("server", f"ddsearch/{__version__}")],
            timeout_graceful_shutdown=5,
            lifespan="on",
        )
        logging.getLogger("mcp").setLevel(logging.WARNING)  # not a line per MCP session
        try:
            uvicorn.Server(config).run(sockets=[self.socket])
        finally:
            self.socket.close()
