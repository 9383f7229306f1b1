"""The report: every section present, figures embedded, PDF pages not blank, no PHI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from twinsep.casefolder import Case
from twinsep.report import CONJOINED_SECTIONS, NOT_CONJOINED_SECTIONS, build_report

ROOT = Path(__file__).resolve().parents[2]


def _stages_to_schedule(scan: Path, out: Path, *, roster: bool = True) -> Case:
    """Run the stages the report reads (ingest ... schedule, not models/viewer)."""
    from twinsep.casefolder import load_plan, update_plan
    from twinsep.identify import identify_case
    from twinsep.ingest.read import ingest
    from twinsep.segment import segment_case

    case = ingest(scan / "ct.nii.gz", out).case
    segment_case(case, tissues_file=scan / "tissues.nii.gz")
    res = identify_case(case)
    if not res.conjoined:
        return case
    from twinsep.separate import separate_case
    from twinsep.simulate import simulate_case

    separate_case(case)
    simulate_case(case, catalog=ROOT / "examples" / "expanders.yaml")
    if roster:
        from twinsep.schedule import load_roster, plan_schedule, write_outputs

        sec = plan_schedule(load_plan(case), load_roster(ROOT / "examples" / "roster.yaml"))
        sec["files"] = write_outputs(sec, case.root / "schedule")
        update_plan(case, schedule=sec)
    return case


@pytest.fixture(scope="module")
def planned_case(tmp_path_factory, make_phantom_case) -> Case:
    ph = make_phantom_case(fusion="total", axial_rotation=60.0, spacing=3.0)
    return _stages_to_schedule(ph, tmp_path_factory.mktemp("report") / "case")


def _section_ids(text: str) -> list[str]:
    return re.findall(r'<section id="([a-z-]+)"', text)


def _pdf_pages_png(pdf: Path, out: Path) -> list[Path]:
    """PDF pages as PNG files (pypdfium2, else pdftoppm)."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        pdfium = None
    out.mkdir(parents=True, exist_ok=True)
    if pdfium is not None:
        doc = pdfium.PdfDocument(str(pdf))
        paths = []
        for i in range(len(doc)):
            p = out / f"page-{i + 1}.png"
            doc[i].render(scale=0.5).to_pil().save(p)
            paths.append(p)
        doc.close()
        return paths
    exe = shutil.which("pdftoppm")
    if exe is None:
        pytest.skip("neither pypdfium2 nor pdftoppm is installed")
    import subprocess

    subprocess.run([exe, "-png", "-r", "40", str(pdf), str(out / "page")], check=True)
    return sorted(out.glob("page*.png"))


def test_report_sections_and_pdf(planned_case: Case, tmp_path: Path) -> None:
    res = build_report(planned_case)
    text = res.html.read_text(encoding="utf-8")
    assert tuple(_section_ids(text)) == CONJOINED_SECTIONS == res.sections
    # self-contained: figures embedded, nothing fetched from elsewhere
    assert text.count('src="data:image/png;base64,') >= 3  # slices, 3-D render, Gantt
    assert not re.search(r'src="(?!data:)', text)
    assert "<link" not in text
    # the chosen cut is marked and the tables are there
    assert 'class="chosen"' in text
    assert "min_risk" in text and "shared sinus kept by twin A" in text
    for needle in ("Tissue expanders", "Cranial implant", "Phases", "plan.json schema",
                   "Aya et al. 2014 rule", 'alt="reconstruction"'):
        assert needle in text
    assert (planned_case.figures / "render_3d.png").stat().st_size > 10_000
    assert res.pdf is not None and res.pdf.read_bytes()[:5] == b"%PDF-"
    pages = _pdf_pages_png(res.pdf, tmp_path / "png")
    assert len(pages) >= 3
    from PIL import Image

    for p in pages:
        a = np.asarray(Image.open(p).convert("L"))
        assert (a < 200).mean() > 0.002, f"{p.name} is blank"
    # a page with a figure has colour: purple or orange pixels
    colourful = 0
    for p in pages:
        rgb = np.asarray(Image.open(p).convert("RGB")).astype(int)
        colourful += int(((rgb[..., 0] - rgb[..., 2]) > 60).sum() > 100)
    assert colourful >= 1


def test_render_3d_is_deterministic(planned_case: Case, tmp_path: Path) -> None:
    from twinsep.report import render_3d

    a = render_3d(planned_case, tmp_path / "a.png").read_bytes()
    b = render_3d(planned_case, tmp_path / "b.png").read_bytes()
    assert a == b


def test_reconstruction_figure(planned_case: Case, tmp_path: Path) -> None:
    """One panel per child with its implant (light blue) and expanders (pale green),
    drawn the same way twice."""
    from PIL import Image

    from twinsep.report.reconstruction_figure import reconstruction_figure

    a = reconstruction_figure(planned_case, tmp_path / "a.png")
    b = reconstruction_figure(planned_case, tmp_path / "b.png")
    assert a is not None and a.read_bytes() == b.read_bytes()
    rgb = np.asarray(Image.open(a).convert("RGB")).astype(int)
    half = rgb.shape[1] // 2
    for panel in (rgb[:, :half], rgb[:, half:]):
        blue = (panel[..., 2] > panel[..., 0] + 60) & (panel[..., 1] > panel[..., 0] + 30)
        green = ((panel[..., 1] > panel[..., 0] + 25) & (panel[..., 1] > panel[..., 2] + 5))
        assert blue.sum() > 50 and green.sum() > 500, (blue.sum(), green.sum())


def test_no_phi_unless_keep_phi(planned_case: Case, tmp_path: Path) -> None:
    case = Case(tmp_path / "case")
    shutil.copytree(planned_case.root, case.root)
    info = json.loads(case.case_json.read_text())
    info["phi"] = {"patient_name": "DOE^JANE", "patient_id": "MRN12345"}
    case.case_json.write_text(json.dumps(info))
    text = build_report(case, pdf=False).html.read_text()
    assert "DOE^JANE" not in text and "MRN12345" not in text
    assert "No patient name or ID" in text
    text = build_report(case, keep_phi=True, pdf=False).html.read_text()
    assert "DOE^JANE" in text and "MRN12345" in text


def test_short_report_when_not_conjoined(make_phantom_case, tmp_path: Path) -> None:
    ph = make_phantom_case(separate=True, spacing=3.0)
    case = _stages_to_schedule(ph, tmp_path / "case")
    res = build_report(case, pdf=False)
    text = res.html.read_text()
    assert tuple(_section_ids(text)) == NOT_CONJOINED_SECTIONS
    assert "Not conjoined" in text


def test_report_cli(planned_case: Case, tmp_path: Path) -> None:
    from twinsep.cli import main

    case = tmp_path / "case"
    shutil.copytree(planned_case.root, case)
    (case / "report.html").unlink(missing_ok=True)
    assert main(["report", str(case), "--no-pdf"]) == 0
    assert (case / "report.html").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_growth_section_when_compared(planned_case: Case, tmp_path: Path) -> None:
    """A case compared with an earlier scan (`twinsep compare`) gets a growth section."""
    from twinsep.casefolder import update_plan

    case = Case(tmp_path / "case")
    shutil.copytree(planned_case.root, case.root)
    assert "growth" not in _section_ids(build_report(case, pdf=False).html.read_text())
    entry = {"earlier": 60.0, "later": 75.0, "change": 15.0, "change_per_month": 2.5}
    volumes = {t: dict(entry) for t in ("scalp", "bone", "dura", "brain", "vessel")}
    update_plan(case, growth={
        "junction_area_cm2": entry,
        "shared_vessel_volume_ml": {"earlier": 4.0, "later": 9.0, "change": 5.0,
                                    "change_per_month": 0.83},
        "tissue_volumes_ml": {"A": volumes, "B": volumes},
        "months": 6.0, "months_source": "--months",
        "registration": {"brain_centroid_error_mm": {"A": 0.3, "B": 0.4}},
        "twins_swapped": False, "warnings": [],
    })
    text = build_report(case, pdf=False).html.read_text()
    ids = _section_ids(text)
    assert "growth" in ids and ids.index("growth") > ids.index("schedule")
    assert "Interval 6.0 months" in text and "15.00" in text and "0.83" in text
