#!/usr/bin/env python3
"""Vendor three.js from ``node_modules/three`` into the twinsep viewer package.

Run from the repository root after ``npm ci``::

    python scripts/vendor_three.py            # copy (idempotent)
    python scripts/vendor_three.py --check    # exit 1 if the vendored copy is missing/stale

It copies the ES modules the viewer uses (the core build, GLTFLoader and its two helper
modules, OrbitControls, VRButton) and three's licence, unchanged, into
``src/twinsep/view/static/vendor/three/`` keeping three's own folder layout, and writes
``VERSION`` with the npm version. The viewer builder (``twinsep.view.build``) inlines
these files into each ``index.html``, so the installed package needs no network and no npm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "node_modules" / "three"
DEST = ROOT / "src" / "twinsep" / "view" / "static" / "vendor" / "three"

#: Files copied, relative to the three package root.
FILES = (
    "LICENSE",
    "build/three.core.js",
    "build/three.module.js",
    "examples/jsm/loaders/GLTFLoader.js",
    "examples/jsm/utils/BufferGeometryUtils.js",
    "examples/jsm/utils/SkeletonUtils.js",
    "examples/jsm/controls/OrbitControls.js",
    "examples/jsm/webxr/VRButton.js",
)


def _version(src: Path) -> str:
    return json.loads((src / "package.json").read_text(encoding="utf-8"))["version"]


def check(src: Path = SRC, dest: Path = DEST) -> list[str]:
    """Names of vendored files that are missing or differ from ``src`` (empty: up to date)."""
    if not (src / "package.json").is_file():
        return [] if all((dest / f).is_file() for f in FILES) else ["(node_modules/three)"]
    stale = [f for f in FILES if not (dest / f).is_file()
             or (dest / f).read_bytes() != (src / f).read_bytes()]
    version_file = dest / "VERSION"
    if not version_file.is_file() or version_file.read_text().strip() != _version(src):
        stale.append("VERSION")
    return stale


def vendor(src: Path = SRC, dest: Path = DEST) -> list[Path]:
    """Copy the three.js files into ``dest``; return the paths written."""
    if not (src / "package.json").is_file():
        raise SystemExit(f"{src}: not found; run `npm ci` in the repository root first")
    written = []
    for rel in FILES:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
        written.append(target)
    (dest / "VERSION").write_text(_version(src) + "\n", encoding="utf-8")
    written.append(dest / "VERSION")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, copy nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = check()
        if stale:
            print("vendored three.js is stale: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("vendored three.js is up to date")
        return 0
    paths = vendor()
    print(f"vendored three.js {_version(SRC)}: {len(paths)} files in {DEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
