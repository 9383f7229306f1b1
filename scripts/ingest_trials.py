#!/usr/bin/env python3
"""Reliability trials of `twinsep ingest` on real scanner DICOM (issue 14).

    scripts/ingest_trials.py TRIAL... --out TABLE.md [--expand ROOT ...] [--json TABLE.json]

Each TRIAL (a folder or a file) is ingested once into a fresh case folder by
`twinsep ingest TRIAL --out CASE` in a subprocess (120 s timeout); `--expand
ROOT` adds every leaf folder under ROOT, every exam folder (a folder whose
subfolders are all leaves) and every multi-frame (enhanced) DICOM file as its
own trial.  For each run it records the exit code, the last line of stderr,
the wall time and the peak RSS (ru_maxrss of the waited child, os.wait4), and
checks:

  * exit code 0 or 2, no "Traceback" in stdout/stderr;
  * on failure exactly one line of output and no case folder left behind;
  * no PatientName / PatientID / SeriesDescription / StudyDescription of the
    source files (read with pydicom) in stdout, stderr or case.json (the trial
    path itself is blanked out of the output first, since folder names often
    are descriptions).

Where ingest succeeded, the files it took (found by the sha256 list in
case.json) are given to dcm2niix alone; a 3-D NIfTI of the same size (the
_Tilt/_Eq corrected one where dcm2niix writes one) is resampled onto twinsep's
grid with SimpleITK in world coordinates (linear), and p50/p99/max
|difference| over the voxels inside both grids is reported in the stored units.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TWINSEP = shutil.which("twinsep", path=str(VENV_BIN)) or shutil.which("twinsep") or "twinsep"
DCM2NIIX = shutil.which("dcm2niix", path=str(VENV_BIN)) or shutil.which("dcm2niix") or "dcm2niix"
TIMEOUT_S = 120
PLAIN_TS = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
TS_NAMES = {
    "1.2.840.10008.1.2.1.99": "deflate", "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.51": "JPEG ext", "1.2.840.10008.1.2.4.57": "JPEG lossless",
    "1.2.840.10008.1.2.4.70": "JPEG lossless SV1", "1.2.840.10008.1.2.4.80": "JPEG-LS",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near", "1.2.840.10008.1.2.4.90": "J2K lossless",
    "1.2.840.10008.1.2.4.91": "J2K", "1.2.840.10008.1.2.5": "RLE",
    "1.2.840.10008.1.2.2": "big endian",
}


# ---------------------------------------------------------------- discovery

def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _read_header(path: Path):
    import pydicom
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except Exception:
        return None


def expand(root: Path) -> list[Path]:
    """Leaf folders, exam folders (all subfolders leaves) and multi-frame files under root."""
    trials: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames.sort()
        files = [f for f in sorted(filenames) if not f.startswith(".")]
        if not dirnames and files:
            trials.append(d)
            for f in (files if len(files) <= 50 else []):
                ds = _read_header(d / f)
                if ds is not None and int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
                    trials.append(d / f)
        elif dirnames and d != root:
            subs = [d / s for s in dirnames]
            if all(not any(p.is_dir() for p in s.iterdir()) for s in subs):
                trials.append(d)
    # a folder made of hard links into another trial (cl_series/NNNN) is
    # listed by its series; its exam folder would repeat the mixed folder
    return [t for t in trials if not (t.is_dir() and t.name.endswith("_series"))]


# ---------------------------------------------------------------- describe

def describe(trial: Path) -> dict:
    files = [trial] if trial.is_file() else [p for p in trial.rglob("*") if p.is_file()]
    info = {"vendor": "", "modality": "", "model": "", "files": len(files), "series": set(),
            "phi": set(), "traits": set()}
    hdrs = []
    step = max(1, len(files) // 200)          # at most ~200 headers per trial
    for p in sorted(files)[::step]:
        ds = _read_header(p)
        if ds is None or ("SOPClassUID" not in ds and "Modality" not in ds):
            continue
        hdrs.append(ds)
    for ds in hdrs:
        info["vendor"] = info["vendor"] or str(getattr(ds, "Manufacturer", "") or "")
        info["modality"] = info["modality"] or str(getattr(ds, "Modality", "") or "")
        info["series"].add(str(getattr(ds, "SeriesInstanceUID", "")))
        for kw in ("PatientName", "PatientID", "SeriesDescription", "StudyDescription"):
            v = str(getattr(ds, kw, "") or "").strip()
            if len(v) >= 4:
                info["phi"].add((kw, v))
        ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
        if ts and ts not in PLAIN_TS:
            info["traits"].add(TS_NAMES.get(ts, "compressed " + ts))
        elif ts == "1.2.840.10008.1.2.2":
            info["traits"].add("big endian")
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            info["traits"].add(f"multi-frame ({int(ds.NumberOfFrames)} frames)")
        if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
            info["traits"].add("enhanced")
        if "MOSAIC" in [str(x).upper() for x in (getattr(ds, "ImageType", []) or [])]:
            info["traits"].add("mosaic")
        try:
            if abs(float(getattr(ds, "GantryDetectorTilt", 0) or 0)) > 0.01:
                info["traits"].add(f"tilt {float(ds.GantryDetectorTilt):g} deg")
        except (TypeError, ValueError):
            pass
        if str(getattr(ds, "PhotometricInterpretation", "")).startswith(("RGB", "YBR", "PALETTE")):
            info["traits"].add(str(ds.PhotometricInterpretation))
        bits = getattr(ds, "BitsStored", None)
        if bits is not None and int(bits) not in (8, 16):
            info["traits"].add(f"{int(bits)}-bit")
        if getattr(ds, "Modality", "") in ("SR", "PR", "RTPLAN", "RTSTRUCT") or (
                "PixelData" not in ds and "SOPClassUID" in ds and not hasattr(ds, "Rows")):
            info["traits"].add("no pixels")
    if len(info["series"]) > 1:
        info["traits"].add(f"{len(info['series'])} series")
    if not hdrs:
        info["traits"].add("no DICOM")
    return info


# ---------------------------------------------------------------- run

def run_ingest(trial: Path, case: Path) -> dict:
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        proc = subprocess.Popen([TWINSEP, "ingest", str(trial), "--out", str(case)],
                                stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > TIMEOUT_S:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out = fo.read().decode("utf-8", "replace")
        err = fe.read().decode("utf-8", "replace")
    return {"rc": proc.returncode, "timed_out": timed_out, "stdout": out, "stderr": err,
            "wall_s": wall, "rss_mb": ru.ru_maxrss / 1024.0}


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def used_files(trial: Path, case_json: dict) -> list[Path]:
    want = {e.get("sha256") for e in case_json.get("hashes", {}).get("input_files", [])}
    files = [trial] if trial.is_file() else sorted(p for p in trial.rglob("*") if p.is_file())
    return [p for p in files if _sha(p) in want] or files


def compare_dcm2niix(files: list[Path], scan: Path, work: Path) -> dict:
    import SimpleITK as sitk
    src = work / "in"
    out = work / "out"
    src.mkdir(parents=True)
    out.mkdir()
    for i, p in enumerate(files):
        try:
            os.link(p, src / f"{i:06d}_{p.name}")
        except OSError:
            shutil.copy2(p, src / f"{i:06d}_{p.name}")
    r = subprocess.run([DCM2NIIX, "-z", "n", "-b", "n", "-f", "%s_%p", "-o", str(out), str(src)],
                       capture_output=True, text=True, timeout=300)
    niis = sorted(out.glob("*.nii"))
    if not niis:
        last = (r.stdout.strip().splitlines() or [""])[-1][:80]
        return {"d2n": f"no NIfTI ({last})"}
    ref = sitk.ReadImage(str(scan))
    cands = []
    for n in niis:
        try:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(n))
            reader.ReadImageInformation()
            size = reader.GetSize()
        except Exception as exc:
            cands.append((9, n, None, str(exc)[:60]))
            continue
        pref = 0 if re.search(r"_(Tilt|Eq)_\d", n.name) else 1
        if len(size) > 3 and size[3] > 1:
            pref += 4                      # 4-D: compared on its first volume
        cands.append((pref, n, size, ""))
    cands.sort(key=lambda c: (c[0], c[1].name))
    pref, nii, size, _ = cands[0]
    if size is None:
        return {"d2n": "unreadable NIfTI"}
    res = {"d2n_file": nii.name, "d2n_size": list(size), "d2n_count": len(niis)}
    img = sitk.ReadImage(str(nii))
    if img.GetDimension() == 4:
        img = img[:, :, :, 0]
        res["d2n_4d"] = True
    if img.GetDimension() == 2 or len([s for s in img.GetSize() if s > 1]) < 3:
        res["d2n"] = f"2-D ({'x'.join(map(str, size))})"
        return res
    img = sitk.Cast(img, sitk.sitkFloat64)
    res["d2n_spacing"] = [round(s, 4) for s in img.GetSpacing()]
    lin = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat64)
    a = sitk.GetArrayFromImage(lin)
    b = sitk.GetArrayFromImage(sitk.Cast(ref, sitk.sitkFloat64))
    inside = np.isfinite(a)
    if ref.GetNumberOfComponentsPerPixel() > 1 or b.shape != a.shape:
        res["d2n"] = "not comparable (components)"
        return res
    if not inside.any():
        res["d2n"] = "no overlap in world space"
        return res
    d = np.abs(a[inside] - b[inside])
    res.update({"p50": float(np.percentile(d, 50)), "p99": float(np.percentile(d, 99)),
                "max": float(d.max()), "inside_frac": float(inside.mean()),
                "range": float(np.percentile(b[inside], 99) - np.percentile(b[inside], 1))})
    res["d2n"] = f"p99 {res['p99']:.3g} (p50 {res['p50']:.3g})"
    return res


def trial(trial_path: Path, scratch: Path, compare: bool = True) -> dict:
    info = describe(trial_path)
    work = Path(tempfile.mkdtemp(prefix="trial_", dir=scratch))
    case = work / "case"
    r = run_ingest(trial_path, case)
    res = {"trial": str(trial_path), "vendor": info["vendor"], "modality": info["modality"],
           "files": info["files"], "traits": sorted(info["traits"]), **r}
    both = r["stdout"] + r["stderr"]
    lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
    res["last_line"] = (lines[-1] if lines else "").replace(str(trial_path), "<in>")
    checks = {}
    checks["rc in {0,2}"] = r["rc"] in (0, 2)
    checks["no Traceback"] = "Traceback" not in both
    case_json = {}
    cj_text = ""
    if r["rc"] == 0:
        try:
            cj_text = (case / "case.json").read_text()
            case_json = json.loads(cj_text)
            checks["case written"] = (case / "scan.nii.gz").is_file()
        except Exception:
            checks["case written"] = False
    else:
        out_lines = [ln for ln in both.splitlines() if ln.strip()]
        checks["one line"] = len(out_lines) == 1
        checks["nothing written"] = not case.exists() or not any(case.iterdir())
    blanked = both.replace(str(trial_path), "<TRIAL>")
    leaks = sorted({f"{kw}={v!r}" for kw, v in info["phi"]
                    if v in blanked or v in cj_text})
    checks["no identity"] = not leaks
    res["leaks"] = leaks
    res["checks"] = checks
    if r["rc"] == 0 and compare and case_json:
        res["geometry"] = case_json.get("geometry", {})
        res["resampling"] = case_json.get("resampling", {})
        res["pixel_type"] = case_json.get("pixel_type")
        res["rescale"] = case_json.get("rescale", {})
        try:
            res.update(compare_dcm2niix(used_files(trial_path, case_json), case / "scan.nii.gz",
                                        work / "d2n"))
        except Exception as exc:
            res["d2n"] = f"comparison failed: {type(exc).__name__}: {str(exc)[:80]}"
    elif r["rc"] != 0 and compare:
        # would dcm2niix read it as a plain 3-D volume?
        try:
            files = [trial_path] if trial_path.is_file() else sorted(
                p for p in trial_path.rglob("*") if p.is_file())
            if len(files) <= 3000:
                d = work / "d2n"
                d.mkdir()
                (d / "out").mkdir()
                src = trial_path
                if trial_path.is_file():        # dcm2niix given a file reads its whole folder
                    src = d / "in"
                    src.mkdir()
                    os.link(trial_path, src / trial_path.name)
                subprocess.run([DCM2NIIX, "-z", "n", "-b", "n", "-f", "%s_%p", "-o",
                                str(d / "out"), str(src)],
                               capture_output=True, text=True, timeout=300)
                import SimpleITK as sitk
                shapes = []
                for n in sorted((d / "out").glob("*.nii")):
                    rd = sitk.ImageFileReader()
                    rd.SetFileName(str(n))
                    rd.ReadImageInformation()
                    shapes.append(tuple(rd.GetSize()))
                res["d2n_shapes"] = [list(s) for s in shapes]
                n3 = sum(1 for s in shapes if len([x for x in s[:3] if x > 1]) == 3)
                res["d2n"] = (f"{len(shapes)} NIfTI, {n3} 3-D+" if shapes else "no NIfTI")
        except Exception as exc:
            res["d2n"] = f"dcm2niix: {type(exc).__name__}"
    shutil.rmtree(work, ignore_errors=True)
    return res


# ---------------------------------------------------------------- table

def _short(s: str, n: int = 90) -> str:
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _label(path: str, base: str) -> str:
    p = path
    for marker in ("/data/", "/test_files/"):
        if marker in p:
            p = p.split(marker, 1)[1]
            if marker == "/test_files/":
                p = "pydicom/" + p
            break
    return p.replace("/In/", "/", 1)


def table(results: list[dict]) -> str:
    rows = ["| # | repository/series | vendor | modality | what it is | twinsep | vs dcm2niix "
            "| time | peak RSS | checks |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        traits = list(r["traits"])
        res = r.get("resampling") or {}
        for reason in res.get("reason", []) or []:
            traits.append("resampled: " + reason)
        traits.append(f"{r['files']} files")
        if r["rc"] == 0:
            g = r.get("geometry", {})
            size = "x".join(str(s) for s in g.get("size_ijk", []))
            outcome = f"ok {size}"
        elif r["timed_out"]:
            outcome = f"TIMEOUT ({TIMEOUT_S} s)"
        elif r["rc"] == 2:
            outcome = "refused: " + _short(r["last_line"], 110)
        else:
            outcome = f"**exit {r['rc']}**: " + _short(r["last_line"], 100)
        d2n = r.get("d2n", "")
        if r["rc"] == 0 and "d2n_size" in r:
            g = r.get("geometry", {})
            same = list(r["d2n_size"][:3]) == list(g.get("size_ijk", []))
            if "p99" in r:
                d2n = (f"p99 {r['p99']:.3g}, p50 {r['p50']:.3g}, max {r['max']:.3g}"
                       f"{'' if same else ' (d2n ' + 'x'.join(map(str, r['d2n_size'])) + ')'}"
                       f"{' 4-D vol 0' if r.get('d2n_4d') else ''}")
        failed = [k for k, v in r["checks"].items() if not v]
        checks = "all" if not failed else "**FAIL: " + ", ".join(failed) + "**"
        if r.get("leaks"):
            checks += " " + _short("; ".join(r["leaks"]), 60)
        rows.append(f"| {i} | {_short(_label(r['trial'], ''), 70)} | {_short(r['vendor'], 24)} | "
                    f"{r['modality']} | {_short(', '.join(traits), 80)} | {outcome} | "
                    f"{_short(d2n, 80)} | "
                    f"{r['wall_s']:.1f} s | {r['rss_mb']:.0f} MB | {checks} |")
    return "\n".join(rows) + "\n"


def summary(results: list[dict]) -> str:
    n = len(results)
    ok = sum(r["rc"] == 0 for r in results)
    ref1 = sum(r["rc"] == 2 and r["checks"].get("one line", False) for r in results)
    ref_more = sum(r["rc"] == 2 and not r["checks"].get("one line", False) for r in results)
    crash = sum((r["rc"] not in (0, 2)) or not r["checks"]["no Traceback"] for r in results)
    leak = sum(bool(r.get("leaks")) for r in results)
    cmp_ = [r for r in results if "p99" in r]
    big = sum(r["p99"] > 5 for r in cmp_)
    return (f"{n} trials: {ok} read, {ref1} refused with one line, {ref_more} refused with more "
            f"than one line, {crash} crashes (Traceback or exit code not 0/2), {leak} with an "
            f"identity leak; {len(cmp_)} compared with dcm2niix, {big} with p99 |diff| > 5.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trials", nargs="*", type=Path)
    ap.add_argument("--expand", action="append", type=Path, default=[],
                    help="add every leaf/exam folder and multi-frame file under this root")
    ap.add_argument("--out", required=True, type=Path, help="markdown table to write")
    ap.add_argument("--json", type=Path, help="all results as JSON (default: TABLE.json)")
    ap.add_argument("--scratch", type=Path, default=None, help="where the trial cases go")
    ap.add_argument("--no-compare", action="store_true")
    ap.add_argument("--resume", action="store_true",
                    help="keep the results already in the JSON file and run only the others")
    ap.add_argument("--jobs", type=int, default=1, help="trials run at once (times and RSS "
                    "are then measured under contention)")
    a = ap.parse_args(argv)
    trials = list(a.trials)
    for root in a.expand:
        trials.extend(expand(root))
    scratch = a.scratch or a.out.resolve().parent / "cases"
    scratch.mkdir(parents=True, exist_ok=True)
    json_path = a.json or a.out.with_suffix(".json")
    from concurrent.futures import ThreadPoolExecutor
    results: list = [None] * len(trials)
    if a.resume and json_path.is_file():
        done = {r["trial"]: r for r in json.loads(json_path.read_text())}
        results = [done.get(str(t.resolve())) for t in trials]
    todo = [i for i, r in enumerate(results) if r is None]

    def one(i):
        r = trial(trials[i].resolve(), scratch, compare=not a.no_compare)
        results[i] = r
        status = "ok" if r["rc"] == 0 else f"rc={r['rc']}"
        print(f"[{i + 1}/{len(trials)}] {status} {r['wall_s']:.1f}s {r.get('d2n', '')} :: "
              f"{trials[i]}", flush=True)
        json_path.write_text(json.dumps([x for x in results if x], indent=1, default=str))

    with ThreadPoolExecutor(max(1, a.jobs)) as pool:
        list(pool.map(one, todo))
    a.out.write_text(table(results) + "\n" + summary(results) + "\n")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
