"""``twinsep demo --out DIR``: the whole plan on the built-in demo phantom."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console

#: The demo phantom: total vertical craniopagus, type III (60 degrees of axial rotation),
#: with a shared circular sinus, so that every stage has something to do.
DEMO_SPEC = {"fusion": "total", "axial_rotation": 60.0, "shared_sinus": True, "seed": 0}


def _example(name: str) -> Path:
    """An example file of the repository (``examples/NAME``)."""
    local = Path("examples") / name
    if local.exists():
        return local
    return Path(__file__).resolve().parents[3] / "examples" / name


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("demo-case"), "--out", "-o",
                             help="Folder for the demo (phantom/ and case/ inside)."),
    spacing: float = typer.Option(1.0, "--spacing", min=0.3, max=4.0,
                                  help="Voxel size of the phantom CT (mm)."),
    force: bool = typer.Option(False, "--force", help="Redo every stage."),
) -> None:
    """Make the demo phantom (total vertical type III, shared sinus), plan it with the
    example roster and print where the report and the viewer are."""
    from twinsep.cli.plan import print_locations, run_plan_cli
    from twinsep.pipeline import plan_settings

    out = Path(out)
    phantom_dir = out / "phantom"
    ct = phantom_dir / "ct.nii.gz"
    spec_key = dict(DEMO_SPEC, spacing=spacing)
    marker = phantom_dir / "demo-spec.json"
    import json

    if not ct.exists() or not marker.exists() or json.loads(marker.read_text()) != spec_key:
        from twinsep.phantom import PhantomSpec, make_phantom, write_phantom

        with console.status(f"making the demo phantom ({spacing:g} mm)"):
            ph = make_phantom(PhantomSpec(spacing=(spacing,) * 3, **DEMO_SPEC))
            write_phantom(ph, phantom_dir, overwrite=True)
            marker.write_text(json.dumps(spec_key, sort_keys=True) + "\n")
        console.print(f"demo phantom: {ct}")
    roster = _example("roster.yaml")
    settings = plan_settings(ct, roster=roster if roster.exists() else None,
                             catalog=_example("expanders.yaml"))
    result = run_plan_cli(settings, out / "case", force=force)
    print_locations(result, full=True)
