"""Serve a built viewer folder on localhost (``http.server``, no dependencies)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from twinsep.errors import InputError

#: Only the loopback interface: the viewer holds patient data.
HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, no request log, no caching (the page is rebuilt in place)."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".glb": "model/gltf-binary",
    }

    def log_message(self, format: str, *args) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def make_server(directory: str | Path, port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` on 127.0.0.1:``port`` (0 picks a free port)."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise InputError(f"{directory}: no index.html (run `twinsep view CASE --no-serve`)")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        raise InputError(f"cannot serve on {HOST}:{port} ({exc.strerror}); try --port") from None


def url_of(server: ThreadingHTTPServer) -> str:
    """The page's URL."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/index.html"


def start_server(directory: str | Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``directory`` in a daemon thread; returns the server and the page URL.

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    server = make_server(directory, port)
    threading.Thread(target=server.serve_forever, name="twinsep-viewer", daemon=True).start()
    return server, url_of(server)


def serve(directory: str | Path, port: int = 8000, *, open_browser: bool = False,
          announce=print) -> None:
    """Serve ``directory`` on 127.0.0.1 until Ctrl-C (optionally opening a browser)."""
    server = make_server(directory, port)
    url = url_of(server)
    announce(f"serving the viewer at {url} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
