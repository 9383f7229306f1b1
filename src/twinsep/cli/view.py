"""``twinsep view CASE``: build the self-contained 3-D viewer and serve it on localhost."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, in_case, run_command


@app.command("view")
def view(
    case: Path = typer.Argument(..., help="Case folder (with models/ from `twinsep models`)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535,
                             help="Port on 127.0.0.1 to serve on (0 picks a free one)."),
    no_serve: bool = typer.Option(False, "--no-serve",
                                  help="Only write CASE/viewer/index.html, do not serve it."),
    open_browser: bool = typer.Option(False, "--open", help="Open the viewer in a browser."),
    max_size: int | None = typer.Option(None, "--max-size", min=16, max=1024,
                                        help="Largest CT slice grid size per axis (voxels, "
                                        "default 256)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Write CASE/viewer/index.html (layers, clipping, distances, CT slices, VR) and serve it.

    The page works offline and can also be opened directly as a file.
    """
    server = None
    if not no_serve:  # a busy port is refused before the page is rewritten
        from twinsep.view.serve import bind

        server = bind(port)
    try:
        result = run_command("view", case, {"max_size": max_size}, set_).data
    except BaseException:
        if server is not None:
            server.server_close()
        raise
    mb = result.size_bytes / 1e6
    console.print(f"wrote {in_case(result.index_html, case)} ({mb:.1f} MB, "
                  f"{len(result.layers)} layers)")
    if server is None:
        if open_browser:
            import webbrowser

            webbrowser.open(result.index_html.resolve().as_uri())
        return
    from twinsep.view.serve import serve

    serve(result.index_html.parent, port, open_browser=open_browser, announce=console.print,
          server=server)
