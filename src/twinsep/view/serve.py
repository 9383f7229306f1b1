"""Serve a built viewer folder on localhost (``http.server``, no dependencies).

Safe by default: bound to 127.0.0.1; a request whose ``Host`` header is not a loopback name
(DNS rebinding: a page elsewhere resolving its own name to 127.0.0.1) is refused with 403;
only files inside the viewer folder are served (``http.server`` already keeps paths inside
it); a malformed path (a NUL byte, an unreadable escape) is a 400, never a traceback.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from twinsep.errors import InputError

#: Only the loopback interface: the viewer holds patient data.
HOST = "127.0.0.1"


#: The ``Host`` names a loopback page is reached by.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def local_host(header: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback interface (any port).

    >>> local_host("127.0.0.1:8000"), local_host("localhost"), local_host("evil.example:80")
    (True, True, False)
    """
    if not header:
        return False
    name = header.strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1]
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return name in LOCAL_HOSTS


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, no request log, no caching (the page is rebuilt in place); only for
    loopback ``Host`` names; malformed paths are refused."""

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

    def _refused(self) -> bool:
        if not local_host(self.headers.get("Host")):
            self.send_error(403, "only a loopback Host is served")
            return True
        if "\x00" in self.path or "%00" in self.path.lower():
            self.send_error(400, "malformed path")
            return True
        return False

    def do_GET(self) -> None:
        if not self._refused():
            try:
                super().do_GET()
            except (ValueError, OSError):
                self.send_error(400, "malformed path")

    def do_HEAD(self) -> None:
        if not self._refused():
            try:
                super().do_HEAD()
            except (ValueError, OSError):
                self.send_error(400, "malformed path")


def bind(port: int = 8000) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:``port`` (0 picks a free port) that serves nothing yet:
    a busy port is refused before anything is built (then :func:`serve_folder`)."""
    try:
        return ThreadingHTTPServer((HOST, port), _QuietHandler, bind_and_activate=True)
    except OSError as exc:
        raise InputError(f"cannot serve on {HOST}:{port} ({exc.strerror}); try --port") from None


def serve_folder(server: ThreadingHTTPServer, directory: str | Path) -> ThreadingHTTPServer:
    """Let ``server`` serve the files of ``directory`` (which must hold index.html)."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        server.server_close()
        raise InputError(f"{directory}: no index.html (run `twinsep view CASE --no-serve`)")
    server.RequestHandlerClass = functools.partial(_QuietHandler, directory=str(directory))
    return server


def make_server(directory: str | Path, port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` on 127.0.0.1:``port`` (0 picks a free port)."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise InputError(f"{directory}: no index.html (run `twinsep view CASE --no-serve`)")
    return serve_folder(bind(port), directory)


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
          announce=print, server: ThreadingHTTPServer | None = None) -> None:
    """Serve ``directory`` on 127.0.0.1 until Ctrl-C (optionally opening a browser);
    ``server``: one already bound with :func:`bind`."""
    server = (make_server(directory, port) if server is None
              else serve_folder(server, directory))
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
