"""The 3-D viewer (``twinsep view``), driven in Debian's headless chromium by Playwright.

The case is a small synthetic two-head phantom built here (fast and with exact geometry):
two spheres stacked along z (twin A inferior, twin B superior) on a 2 mm grid, with the
CT, the owner map and a ``models/`` folder in the format of ``twinsep models`` (a GLB in
metres, +Y up, written by ``twinsep.exchange.gltf.write_glb``, with nodes ``A/scalp``,
``A/brain``, ``B/scalp``, ``B/brain``, ``shared/vessel-1``, ``cut-surface``, and a
``manifest.json``). The scalps are UV spheres
whose poles point anteriorly, so the front-most point of each head is a mesh vertex at a
known world position; their distance is the distance of the head centres.

Chromium must be at /usr/bin/chromium (``apt-get install -y chromium``); Playwright's own
browser download is not used. Without it the browser tests are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from twinsep.cli import main

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
#: Phantom geometry (world LPS mm).
CENTRE_A = np.array([4.0, -6.0, -42.0])
CENTRE_B = np.array([4.0, -6.0, 42.0])
SCALP_R, BRAIN_R = 48.0, 36.0
LAYERS = ["A/scalp", "A/brain", "B/scalp", "B/brain", "shared/vessel-1", "cut-surface"]

needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} not installed (apt-get install -y chromium); the viewer's browser "
    "tests need it",
)


# --- the phantom case ----------------------------------------------------------------------
def _write_models(models: Path) -> None:
    """``models/model.glb`` + ``manifest.json`` as ``twinsep models`` writes them."""
    import trimesh

    from twinsep.colours import CUT_SURFACE_RGB, shared_vessel_colour, tissue_colour
    from twinsep.exchange.gltf import LPS_MM_TO_GLTF, GltfPart, write_glb

    def sphere(centre, r):
        # poles along LPS -y (anterior), so the front-most point is a vertex
        m = trimesh.creation.uv_sphere(radius=r, count=[48, 48])
        m.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
        m.apply_translation(centre)
        return m

    middle = [CENTRE_A[0], CENTRE_A[1], 0.0]
    meshes = {
        "A/scalp": sphere(CENTRE_A, SCALP_R), "A/brain": sphere(CENTRE_A, BRAIN_R),
        "B/scalp": sphere(CENTRE_B, SCALP_R), "B/brain": sphere(CENTRE_B, BRAIN_R),
        "shared/vessel-1": trimesh.creation.annulus(r_min=20, r_max=26, height=6)
        .apply_translation(middle),
        "cut-surface": trimesh.creation.cylinder(radius=40, height=0.5).apply_translation(middle),
    }
    entries, parts = [], []
    for name, mesh in meshes.items():
        twin = name[0] if name[:2] in ("A/", "B/") else None
        tissue = name[2:] if twin else ("vessel" if name.startswith("shared") else name)
        colour = (tissue_colour(twin, tissue) if twin else
                  shared_vessel_colour() if tissue == "vessel" else CUT_SURFACE_RGB)
        opacity = 0.45 if name == "cut-surface" else 1.0
        group = twin or ("shared" if tissue == "vessel" else None)
        parts.append(GltfPart(name, mesh.vertices, mesh.faces, colour, opacity, group=group,
                              double_sided=name == "cut-surface"))
        entries.append({"name": name, "node": name, "twin": twin, "tissue": tissue,
                        "colour_rgb": list(colour), "opacity": opacity})
    models.mkdir(parents=True, exist_ok=True)
    write_glb(models / "model.glb", parts)
    manifest = {"format": "twinsep-models", "version": 1, "glb": "model.glb",
                "frame": {"glb_units": "m", "glb_from_lps_mm": LPS_MM_TO_GLTF.tolist()},
                "layers": entries}
    (models / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def viewer_case(tmp_path_factory) -> Path:
    """A case folder with scan, owner map and models; the viewer built with the CLI."""
    from twinsep.image import Volume

    case = tmp_path_factory.mktemp("viewer") / "case"
    (case / "labels").mkdir(parents=True)
    spacing, shape = (2.0, 2.0, 2.0), (100, 60, 60)  # k, j, i
    origin = (CENTRE_A[0] - 59.0, CENTRE_A[1] - 59.0, -99.0)
    vol = Volume(np.zeros(shape, np.int16), origin, spacing)
    k, j, i = np.indices(shape)
    xyz = vol.index_to_world(np.stack([k, j, i], -1))
    ct = np.full(shape, -1000, np.int16)
    owner = np.zeros(shape, np.uint8)
    for code, c in ((1, CENTRE_A), (2, CENTRE_B)):
        r = np.linalg.norm(xyz - c, axis=-1)
        head = r <= SCALP_R
        ct[head & (owner == 0)] = 40
        ct[head & (r > BRAIN_R) & (r < BRAIN_R + 6)] = 900
        owner[head & (owner == 0)] = code
    owner[(owner == 1) & (xyz[..., 2] > 0)] = 2
    vol.with_array(ct).write(case / "scan.nii.gz")
    vol.with_array(owner).write(case / "labels" / "twins.nii.gz")
    _write_models(case / "models")
    assert main(["view", str(case), "--no-serve"]) == 0
    return case


# --- the browser -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A loaded viewer page with every request, console error and page error recorded."""

    def __init__(self, browser, url: str):
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 800},
                                           device_scale_factor=1)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        # no wait_for_function: its string polling is eval, which the page's CSP forbids
        self.page.wait_for_selector("body[data-ready]", state="attached", timeout=120_000)
        assert self.page.evaluate("window.twinsep.error") is None

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def pixels(self) -> np.ndarray:
        """RGB screenshot of the 3-D view."""
        import io

        from PIL import Image

        png = self.page.locator("#viewport canvas").screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)

    def close(self):
        self.context.close()


def purple_orange(rgb: np.ndarray) -> tuple[int, int]:
    """Counts of purple-ish (twin A) and orange-ish (twin B) pixels."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    purple = (r > g + 30) & (b > g + 30) & (np.abs(r - b) < 90)
    orange = (r > 150) & (r > g + 30) & (g > b + 30)
    return int(purple.sum()), int(orange.sum())


def _local(url: str) -> bool:
    u = urlparse(url)
    return u.scheme in ("file", "data", "blob", "about") or (
        u.scheme in ("http", "https") and u.hostname in ("127.0.0.1", "localhost"))


@pytest.fixture(scope="module", params=["http", "file"])
def page(request, browser, viewer_case):
    """The viewer, served on 127.0.0.1 and opened as a file."""
    from twinsep.view.serve import start_server

    server = None
    if request.param == "http":
        server, url = start_server(viewer_case / "viewer", port=0)
    else:
        url = (viewer_case / "viewer" / "index.html").resolve().as_uri()
    p = Page(browser, url)
    p.mode = request.param
    yield p
    p.close()
    if server is not None:
        server.shutdown()
        server.server_close()


# --- tests -------------------------------------------------------------------------------
def test_view_writes_one_self_contained_page(viewer_case):
    out = viewer_case / "viewer"
    assert [p.name for p in out.iterdir()] == ["index.html"]
    text = (out / "index.html").read_text()
    assert not re.search(r"""(src|href)=["']?https?://""", text)
    assert "three/addons/webxr/VRButton.js" in text
    assert (out / "index.html").stat().st_size < 20e6
    # the scene travels gzip-compressed: exactly models/model.glb once inflated
    import base64
    import gzip

    block = re.search(r'<script type="application/json" id="twinsep-data">(.*?)</script>',
                      text, re.S).group(1)
    data = json.loads(block)
    assert "glb" not in data
    glb = gzip.decompress(base64.b64decode(data["glb_gzip"]))
    assert glb == (viewer_case / "models" / "model.glb").read_bytes()


def test_view_needs_models(tmp_path, capsys):
    (tmp_path / "case").mkdir()
    assert main(["view", str(tmp_path / "case"), "--no-serve"]) == 2
    assert "twinsep models" in capsys.readouterr().err


@needs_chromium
def test_page_loads_offline_without_errors(page):
    assert page.errors == [], page.errors
    outside = [u[:80] for u in page.requests if not _local(u)]
    assert outside == []
    assert page.js("window.twinsep.threeVersion") == "187"
    vr = page.page.locator("#VRButton, a:has-text('WEBXR')")
    assert vr.count() == 1  # "VR NOT SUPPORTED" / "WEBXR NOT AVAILABLE" in headless chromium


@needs_chromium
def test_every_layer_is_listed(page):
    rows = page.page.locator("#layers .layer")
    listed = rows.evaluate_all("els => els.map(e => e.dataset.layer)")
    assert sorted(listed) == sorted(LAYERS)
    assert sorted(x["name"] for x in page.js("window.twinsep.layers()")) == sorted(LAYERS)
    assert page.page.locator("#layers .layer input[type=range]").count() == len(LAYERS)


@needs_chromium
def test_screenshot_has_purple_and_orange(page):
    n_purple, n_orange = purple_orange(page.pixels())
    assert n_purple > 2000 and n_orange > 2000, (n_purple, n_orange)


@needs_chromium
def test_toggling_a_layer_hides_it(page):
    before = page.pixels()
    box = page.page.locator('#layers .layer[data-layer="B/scalp"] input[type=checkbox]')
    box.uncheck()
    state = {x["name"]: x for x in page.js("window.twinsep.layers()")}
    assert state["B/scalp"]["visible"] is False and state["B/scalp"]["objectVisible"] is False
    after = page.pixels()
    # B's light scalp gone: B's (darker orange) brain shows; the picture changed
    assert np.abs(after - before).sum(-1).astype(bool).sum() > 2000
    box.check()
    assert {x["name"]: x for x in page.js("window.twinsep.layers()")}["B/scalp"]["visible"]


@needs_chromium
def test_opacity_and_clipping_change_the_picture(page):
    before = page.pixels()
    page.js("window.twinsep.setOpacity('A/scalp', 0.3)")
    mid = page.pixels()
    assert np.abs(mid - before).sum(-1).astype(bool).sum() > 1000
    page.js("window.twinsep.setOpacity('A/scalp', 1)")
    page.js("window.twinsep.setClip({axis: 'z', position_mm: 0, enabled: true})")
    clipped = page.pixels()
    _, n_orange = purple_orange(clipped)
    assert n_orange < 200  # twin B (z > 0) clipped away
    page.js("window.twinsep.setClip({enabled: false})")


@needs_chromium
def test_distance_tool_measures_the_phantom(page):
    """Click the front-most points of the two heads: their distance is |cA - cB|."""
    expected = float(np.linalg.norm(CENTRE_B - CENTRE_A))
    front = np.array([0.0, -SCALP_R, 0.0])  # anterior = -y
    page.js("window.twinsep.resetView()")
    page.page.locator("#measure-toggle").click()
    for c in (CENTRE_A, CENTRE_B):
        xy = page.js("p => window.twinsep.project(p)", (c + front).tolist())
        page.page.mouse.click(xy["x"], xy["y"])
    text = page.page.locator("#distance").inner_text()
    value = float(text.replace("mm", ""))
    assert text.endswith(" mm")
    assert abs(value - expected) < 1.0, (text, expected)
    pts = np.array(page.js("window.twinsep.points_mm"))
    assert np.linalg.norm(pts[0] - (CENTRE_A + front)) < 1.0
    assert np.linalg.norm(pts[1] - (CENTRE_B + front)) < 1.0
    page.page.locator("#measure-toggle").click()
    # the scripting API measures in world mm too
    d = page.js("([a, b]) => window.twinsep.measure(a, b)", [CENTRE_A.tolist(), CENTRE_B.tolist()])
    assert d == pytest.approx(expected, abs=1e-6)


@needs_chromium
def test_ct_slices_show_the_owner_overlay(page):
    slices = page.js("window.twinsep.getSlices()")
    assert slices["shape_kji"] == [100, 60, 60]
    for view in ("axial", "coronal", "sagittal"):
        canvas = page.page.locator(f"#slice-{view}")
        data = page.js(f"""() => {{
            const c = document.getElementById('slice-{view}');
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
        }}""")
        rgb = np.asarray(data).reshape(-1, 4)[:, :3].reshape(1, -1, 3)
        n_purple, n_orange = purple_orange(rgb)
        if view == "axial":  # one twin per axial slice
            assert n_purple + n_orange > 100, view
        else:
            assert n_purple > 100 and n_orange > 100, (view, n_purple, n_orange)
        assert canvas.is_visible()


# --- the real pipeline on the craniopagus phantom --------------------------------------------
@pytest.fixture(scope="module")
def phantom_viewer_case(tmp_path_factory, make_phantom_case) -> Path:
    """The total phantom at 2 mm through ``simulate``, ``models`` and ``view`` (true labels
    as input)."""
    from scipy import ndimage as ndi

    from twinsep.casefolder import Case
    from twinsep.image import Volume
    from twinsep.ingest.read import ingest
    from twinsep.models import models_case
    from twinsep.simulate import simulate_case

    src = make_phantom_case()
    case = Case(tmp_path_factory.mktemp("phantom-viewer") / "case")
    ingest(src / "ct.nii.gz", case.root)
    case.labels.mkdir()
    shutil.copy(src / "tissues.nii.gz", case.tissues)
    owner = Volume.read(src / "owner.nii.gz")
    known = np.isin(owner.array, (1, 2))
    idx = ndi.distance_transform_edt(~known, return_distances=False, return_indices=True)
    resolved = owner.array[tuple(idx)] * (owner.array > 0)
    owner.with_array(resolved.astype(np.uint8)).write(case.twins)
    simulate_case(case, catalog=Path(__file__).resolve().parents[2] / "examples"
                  / "expanders.yaml")
    models_case(case)
    assert main(["view", str(case.root), "--no-serve"]) == 0
    return case.root


def _first_hit(tri: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Nearest intersection of a ray with triangles (Moller-Trumbore, vectorised)."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    t0 = origin - tri[:, 0]
    u = np.einsum("ij,ij->i", t0, p) * inv
    q = np.cross(t0, e1)
    v = (q @ direction) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    assert hit.any()
    return origin + t[hit].min() * direction


@pytest.fixture(scope="module")
def phantom_page(browser, phantom_viewer_case):
    """The phantom case's viewer opened once (as a file) for the tests on it: loading the
    17 MB page takes ~8 s. Each test leaves it as it found it (joined stage, no
    measurement, measure mode off)."""
    page = Page(browser, (phantom_viewer_case / "viewer" / "index.html").resolve().as_uri())
    page.opening_stage = page.js("window.twinsep.getStage()")
    yield page
    page.close()


@needs_chromium
def test_distance_tool_on_the_craniopagus_phantom(phantom_page, phantom_viewer_case):
    """Click each twin's scalp where a ray from the front first meets it (found in Python on
    the phantom's own STL meshes): the tool reports their distance within 1 mm."""
    import trimesh

    models = phantom_viewer_case / "models"
    manifest = json.loads((models / "manifest.json").read_text())
    stl = {ly["name"]: models / ly["stl"] for ly in manifest["layers"] if ly["stl"]}
    targets = []
    for name in ("A/scalp", "B/scalp"):
        mesh = trimesh.load(stl[name], force="mesh")
        centre = mesh.bounds.mean(axis=0)
        origin = np.array([centre[0], mesh.bounds[0][1] - 100.0, centre[2]])
        targets.append(_first_hit(mesh.triangles, origin, np.array([0.0, 1.0, 0.0])))
    expected = float(np.linalg.norm(targets[1] - targets[0]))
    assert expected > 50.0  # two heads, well apart

    page = phantom_page
    assert not page.errors
    assert page.js("window.twinsep.getStage()") == "joined"
    page.js("window.twinsep.resetView()")
    page.page.locator("#measure-toggle").click()
    try:
        for p in targets:
            xy = page.js("p => window.twinsep.project(p)", p.tolist())
            page.page.mouse.click(xy["x"], xy["y"])
        text = page.page.locator("#distance").inner_text()
        assert abs(float(text.replace("mm", "")) - expected) < 1.0, (text, expected)
        picked = np.array(page.js("window.twinsep.points_mm"))
        assert np.linalg.norm(picked - np.array(targets), axis=1).max() < 1.0
        r, o = purple_orange(page.pixels())
        assert r > 2000 and o > 2000
    finally:  # leave the shared page as it was: measure mode off, no points
        page.page.locator("#measure-toggle").click()
        page.page.locator("#measure-clear").click()
        page.js("window.twinsep.resetView()")
    assert page.js("window.twinsep.points_mm") == []


SEPARATED = ("head", "skull", "implant", "wound", "expander-1")


def test_separated_layers_in_the_model(phantom_viewer_case, validate_glb):
    """After ``simulate`` the GLB and the manifest hold each separated child (stage
    'separated') from the STL files simulate wrote, in the separated frame."""
    import trimesh

    from twinsep.exchange.gltf import read_glb_json
    from twinsep.models.separated import SEPARATED_MAX_FACES

    models = phantom_viewer_case / "models"
    manifest = json.loads((models / "manifest.json").read_text())
    by = {ly["name"]: ly for ly in manifest["layers"]}
    assert {ly["stage"] for ly in manifest["layers"]} == {"joined", "separated"}
    plan = json.loads((phantom_viewer_case / "plan.json").read_text())["reconstruction"]
    nodes = {n["name"] for n in read_glb_json(models / "model.glb")["nodes"]}
    assert "separated" in nodes
    for twin in "AB":
        shift = np.asarray(plan["twins"][twin]["translation_mm"])
        for kind in SEPARATED:
            ly = by[f"separated/{twin}/{kind}"]
            assert ly["stage"] == "separated" and ly["twin"] == twin, ly
            assert (models / ly["stl"]).is_file() and ly["name"] in nodes
            assert 0 < ly["triangles"] <= SEPARATED_MAX_FACES[ly["tissue"]]
        assert by[f"separated/{twin}/implant"]["colour_rgb"] == [90, 200, 235]
        # the separated head lies where the joined scalp does, moved by translation_mm
        joined = trimesh.load(models / by[f"{twin}/scalp"]["stl"], force="mesh")
        apart = trimesh.load(models / by[f"separated/{twin}/head"]["stl"], force="mesh")
        lo = np.percentile(apart.vertices, 5, axis=0) - shift
        assert np.allclose(lo, np.percentile(joined.vertices, 5, axis=0), atol=6.0)
    report = validate_glb(models / "model.glb")
    assert report["numErrors"] == 0, report["messages"]


@needs_chromium
def test_separated_view_on_the_craniopagus_phantom(phantom_page):
    """The viewer opens on the joined twins; 'Separated' shows each child apart with its
    implant (light blue) and expanders (pale green), and nothing of the joined scan."""
    page = phantom_page
    page.js("window.twinsep.resetView()")
    try:
        assert not page.errors
        assert page.js("window.twinsep.stages()") == ["joined", "separated"]
        assert page.opening_stage == "joined"
        assert page.js("window.twinsep.getStage()") == "joined"
        assert page.page.locator("#stage-panel").is_visible()

        def shown():
            return {ly["name"]: ly["objectVisible"] for ly in page.js("window.twinsep.layers()")}

        vis = shown()
        assert not any(v for n, v in vis.items() if n.startswith("separated/"))
        before = page.pixels()
        page.page.locator("input[name=stage][value=separated]").check()
        assert page.js("window.twinsep.getStage()") == "separated"
        vis = shown()
        assert all(v == n.startswith("separated/") for n, v in vis.items()), vis
        listed = page.page.locator("#layers .layer").evaluate_all(
            "rows => rows.map(r => r.dataset.layer)")
        assert listed and all(n.startswith("separated/") for n in listed)
        rgb = page.pixels()

        def count(img, colour, tol=40):
            return int((np.abs(img - np.asarray(colour)).max(axis=2) < tol).sum())

        # implant and expanders are seen in the separated view only
        for colour in ((90, 200, 235), (150, 225, 185)):
            assert count(rgb, colour) > 200 > count(before, colour), colour
        r, o = purple_orange(rgb)
        assert r > 1000 and o > 1000
        page.js("window.twinsep.setStage('joined')")
        assert not any(v for n, v in shown().items() if n.startswith("separated/"))
        assert not page.errors
    finally:  # leave the shared page on the joined stage
        page.js("window.twinsep.setStage('joined')")


# --- the server: safe by default ---------------------------------------------------------
def _get(url: str, path: str, host: str | None = None) -> int:
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_server_serves_loopback_hosts_only_and_survives_odd_paths(tmp_path, capfd):
    from twinsep.view.serve import start_server

    (tmp_path / "index.html").write_text("<html>ok</html>")
    (tmp_path.parent / "secret.txt").write_text("not for the browser")
    server, url = start_server(tmp_path, port=0)
    try:
        port = server.server_address[1]
        assert _get(url, "/index.html") == 200
        assert _get(url, "/index.html", host=f"localhost:{port}") == 200
        # DNS rebinding: a foreign name that resolves to 127.0.0.1 is refused
        assert _get(url, "/index.html", host="evil.example") == 403
        assert _get(url, "/index.html", host=f"evil.example:{port}") == 403
        # nothing outside the viewer folder; a NUL byte is a clean 400, no traceback
        assert _get(url, "/../secret.txt") == 404
        assert _get(url, "/%2e%2e/secret.txt") == 404
        assert _get(url, "/%00") == 400
        assert _get(url, "/index.html%00.js") == 400
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err


def test_a_busy_port_is_refused_before_the_page_is_rewritten(viewer_case, capsys):
    import socket

    from twinsep.cli import main

    page = viewer_case / "viewer" / "index.html"
    before = (page.stat().st_mtime_ns, page.read_bytes())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["view", str(viewer_case), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "cannot serve on 127.0.0.1" in err and "--port" in err
    assert (page.stat().st_mtime_ns, page.read_bytes()) == before


def test_the_page_never_names_the_case_folder(viewer_case, tmp_path):
    """The case folder is often named for the patient: the page is titled "case"."""
    import base64
    import gzip
    import shutil

    from twinsep.cli import main

    case = tmp_path / "DOE_JANE_0042"
    shutil.copytree(viewer_case, case)
    assert main(["view", str(case), "--no-serve"]) == 0
    text = (case / "viewer" / "index.html").read_text()
    block = re.search(r'<script type="application/json" id="twinsep-data">(.*?)</script>',
                      text, re.S).group(1)
    glb = gzip.decompress(base64.b64decode(json.loads(block)["glb_gzip"]))
    for blob in (text.encode(), glb):
        assert b"DOE_JANE" not in blob  # "_" is not in base64: no chance match
    assert "<title>twinsep — case</title>" in text
