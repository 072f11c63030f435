#!/usr/bin/env python3
"""Build the "tuxphoto" sprite bank from Debian packages.

The bank is a small set of *photographic* object cut-outs (RGBA PNG stamps of
Tux Paint) grouped into ~a dozen classes, plus ~20 natural background photos
(Tux Paint templates and MATE nature wallpapers).  ``lib/data/tuxphoto.py``
composites them into natural-looking images of one object on a background.

How to run (Debian/Ubuntu, as root or with sudo for ``apt-get download`` --
actually ``apt-get download`` works as any user, ``apt-get update`` needs root):

    apt-get update
    python3 data/tuxphoto/build_bank.py            # -> data/tuxphoto/bank/, data/tuxphoto/LICENSE.md

Options:
    --workdir DIR   where the .deb files are downloaded / extracted (default: a
                    temporary directory, deleted afterwards).  Reusing a workdir
                    skips the ~215 MB download.
    --out DIR       bank output directory (default: data/tuxphoto/bank next to
                    this script).  The directory is wiped and rebuilt.
    --max-side N    longest side of stored sprites in pixels (default 128).
    --cap N         maximum number of sprites per class (default 40).
    --min-count N   classes with fewer sprites are dropped (default 8).

Requirements: python3 with pillow and numpy, ``apt-get`` and ``dpkg-deb``.
The selection is deterministic given the package versions (recorded in
bank/index.json and LICENSE.md).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PACKAGES = ["tuxpaint-stamps-default", "tuxpaint-data", "mate-backgrounds"]
STAMPS_DIR = "usr/share/tuxpaint/stamps"

# --------------------------------------------------------------------------
# Class mapping: ordered (substring of the path relative to STAMPS_DIR, class).
# The first matching rule wins; stamps matching no rule are dropped.
# --------------------------------------------------------------------------
CLASS_RULES: list[tuple[str, str]] = [
    ("animals/birds/", "birds"),
    ("animals/fish/", "sea_life"),
    ("animals/mammals/aquatic/", "sea_life"),
    ("animals/shellfish/", "sea_life"),
    ("animals/mammals/", "mammals"),
    ("animals/marsupials/", "mammals"),
    ("animals/insects/", "small_creatures"),  # insects, slug, woodlouse
    ("animals/amphibians/", "small_creatures"),  # frogs
    ("food/fruit/", "fruit"),
    ("plants/trees/rambutan", "fruit"),
    ("food/vegetables/", "vegetables"),
    ("plants/eggplant", "vegetables"),
    ("food/spices/ginger", "vegetables"),
    ("plants/flowers/", "flowers"),
    ("seasonal/easter/daffodil", "flowers"),
    ("plants/", "plants_trees"),
    ("hobbies/music/", "music_instruments"),
    ("military/vehicles/", "vehicles"),
    ("vehicles/", "vehicles"),
    ("household/", "household"),
    ("space/", "space"),
    ("symbols/money/", "coins"),
    ("seasonal/halloween/grave", "gravestones"),
]
# path substrings that exclude a stamp whatever its class (drawings, toys, duplicates)
EXCLUDE = ["cartoon", "/toys/", "_mirror", "_flip"]

# Photographic test on the opaque (alpha > 200) pixels of an RGBA stamp:
#   unique RGB colours >= PHOTO_MIN_COLOURS, or (for small stamps)
#   unique colours >= PHOTO_MIN_COLOURS_SMALL and >= PHOTO_MIN_RATIO * n_opaque.
PHOTO_MIN_COLOURS = 2000
PHOTO_MIN_COLOURS_SMALL = 400
PHOTO_MIN_RATIO = 0.4
MIN_SIDE = 40  # longest side of the alpha bounding box, in source pixels
MAX_ASPECT = 4.5  # drop very thin objects (pens, bassoon): invisible at 32 px

# Background photos: (package, path inside the package, name).  Hand-picked
# natural textures/landscapes; excluded: images whose main content is an object
# of one of the sprite classes (sheep, jellyfish, flower / ladybird / butterfly
# close-ups), man-made scenes (lighthouse, wool mill) and abstract wallpapers.
BACKGROUNDS: list[tuple[str, str, str]] = [
    ("tuxpaint-data", f"usr/share/tuxpaint/templates/{n}.jpg", n)
    for n in ["burnt_bark", "cliff", "corn_maze", "mossy_bark", "mossy_log", "mudstone",
              "ocean_splash", "ocean_waves", "redwoods_above", "rocks", "spiders_web",
              "sun_behind_clouds", "sun_behind_leaves", "trees_above", "trees_at_dusk"]
] + [
    ("mate-backgrounds", f"usr/share/backgrounds/mate/nature/{n}.jpg", "mate_" + n.lower())
    for n in ["Aqua", "Blinds", "Dune", "GreenMeadow", "RainDrops", "Storm", "Wood"]
]
BG_SHORT_SIDE = 256
BG_JPEG_QUALITY = 85


def run(cmd: list[str], cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def fetch_packages(workdir: Path) -> dict[str, dict]:
    """apt-get download + dpkg-deb -x each package; returns {pkg: {version, deb, root}}."""
    out = {}
    debdir = workdir / "debs"
    debdir.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        debs = sorted(debdir.glob(f"{pkg}_*.deb"))
        if not debs:
            print(f"downloading {pkg} ...", flush=True)
            run(["apt-get", "download", pkg], cwd=debdir)
            debs = sorted(debdir.glob(f"{pkg}_*.deb"))
        if not debs:
            raise RuntimeError(f"could not download {pkg}")
        deb = debs[-1]
        version = run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        root = workdir / "x" / pkg
        if not root.exists():
            print(f"extracting {deb.name} ...", flush=True)
            root.mkdir(parents=True)
            run(["dpkg-deb", "-x", str(deb), str(root)])
        out[pkg] = dict(version=version, deb=deb.name, root=root)
    return out


def classify(rel: str) -> str | None:
    if any(e in rel for e in EXCLUDE):
        return None
    for key, cls in CLASS_RULES:
        if key in rel:
            return cls
    return None


def photo_stats(im: Image.Image) -> tuple[bool, int, int, tuple[int, int, int, int] | None]:
    """(is_photographic, n_unique_colours, n_opaque, alpha bbox)."""
    a = np.asarray(im)
    alpha = a[..., 3]
    opaque = alpha > 200
    n_op = int(opaque.sum())
    bbox = Image.fromarray((alpha > 8).astype(np.uint8) * 255).getbbox()
    if n_op == 0 or bbox is None:
        return False, 0, 0, None
    rgb = a[..., :3][opaque].astype(np.int32)
    u = len(np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]))
    ok = u >= PHOTO_MIN_COLOURS or (u >= PHOTO_MIN_COLOURS_SMALL and u >= PHOTO_MIN_RATIO * n_op)
    bw, bh = bbox[2] - bbox[0], bbox[3] - bbox[1]
    ok = ok and max(bw, bh) >= MIN_SIDE and max(bw, bh) <= MAX_ASPECT * min(bw, bh)
    return ok, u, n_op, bbox


def select_sprites(stamps_root: Path, cap: int, min_count: int) -> dict[str, list[dict]]:
    by_class: dict[str, list[dict]] = {}
    for p in sorted(stamps_root.rglob("*.png")):
        rel = p.relative_to(stamps_root).as_posix()
        cls = classify(rel)
        if cls is None:
            continue
        im = Image.open(p)
        if im.mode != "RGBA":  # palette / grey-alpha stamps are drawings
            continue
        im = im.convert("RGBA")
        ok, u, n_op, bbox = photo_stats(im)
        if not ok:
            continue
        by_class.setdefault(cls, []).append(dict(rel=rel, src=p, colours=u, bbox=bbox))
    selected = {}
    for cls in sorted(by_class):
        items = by_class[cls]
        if len(items) < min_count:
            print(f"drop class {cls}: only {len(items)} sprites", flush=True)
            continue
        if len(items) > cap:  # deterministic, spread over the (sorted) path list
            idx = np.unique(np.round(np.linspace(0, len(items) - 1, cap)).astype(int))
            items = [items[i] for i in idx]
        selected[cls] = items
    return selected


def save_sprite(item: dict, dst: Path, max_side: int) -> tuple[int, int]:
    im = Image.open(item["src"]).convert("RGBA").crop(item["bbox"])
    w, h = im.size
    f = min(1.0, max_side / max(w, h))
    if f < 1.0:  # Pillow resizes RGBA with premultiplied alpha (no dark fringes)
        im = im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS)
    a = np.asarray(im).copy()
    a[a[..., 3] == 0, :3] = 0  # canonical fully-transparent pixels compress better
    im = Image.fromarray(a, "RGBA")
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.save(dst, optimize=True)
    return im.size


def trim_dark_borders(im: Image.Image, thr: float = 12.0) -> Image.Image:
    g = np.asarray(im.convert("L"), dtype=np.float32)
    rows = np.where(g.mean(1) > thr)[0]
    cols = np.where(g.mean(0) > thr)[0]
    if len(rows) == 0 or len(cols) == 0:
        return im
    return im.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))


def save_background(src: Path, dst: Path) -> tuple[int, int]:
    im = Image.open(src)
    im.draft("RGB", (BG_SHORT_SIDE * 2, BG_SHORT_SIDE * 2))  # fast JPEG DCT downscale
    im = trim_dark_borders(im.convert("RGB"))
    w, h = im.size
    f = BG_SHORT_SIDE / min(w, h)
    im = im.resize((max(BG_SHORT_SIDE, round(w * f)), max(BG_SHORT_SIDE, round(h * f))), Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.save(dst, quality=BG_JPEG_QUALITY, optimize=True)
    return im.size


def licence_summary(pkgs: dict[str, dict]) -> dict[str, list[str]]:
    out = {}
    for pkg, info in pkgs.items():
        cp = info["root"] / "usr/share/doc" / pkg / "copyright"
        lic = sorted(set(re.findall(r"^License:\s*(\S+)", cp.read_text(errors="replace"), re.M)))
        out[pkg] = lic
    return out


LICENSE_TEMPLATE = """\
# tuxphoto bank: licence and provenance

The files under `data/tuxphoto/bank/` are derived (cropped, downscaled,
re-encoded) from images shipped in the following Debian packages
(Debian 12 "bookworm", `main` archive area):

{pkg_table}

Build date: {date}. Built with:

```
apt-get update
python3 data/tuxphoto/build_bank.py{args}
```

`build_bank.py` downloads the packages with `apt-get download`, extracts them
with `dpkg-deb -x`, keeps the photographic RGBA stamps of
`/usr/share/tuxpaint/stamps/` (unique-colour test, see the script), maps them to
classes by path keywords (`CLASS_RULES` in the script), caps each class at
{cap} sprites, crops each stamp to its alpha bounding box and downscales it to a
longest side of at most {max_side} px, and downscales the listed background
photos to a short side of {bg} px (JPEG quality {q}).  `bank/index.json` lists
every file with its source path inside its package.

## Licences (from `/usr/share/doc/<package>/copyright`)

* **tuxpaint-stamps-default** (all sprites): `Files: *`, Copyright 2002-2022
  Bill Kendrick <bill@newbreedsoftware.com> and the Tux Paint contributors,
  **License: GPL-2**.  Licences named in its copyright file: {lic_stamps}.
* **tuxpaint-data** (backgrounds from `/usr/share/tuxpaint/templates/`):
  `Files: *`, Copyright 2002-2021 Bill Kendrick; the templates are credited to
  Bill Kendrick <bill@newbreedsoftware.com> in `AUTHORS.txt`.
  **License: GPL-2+**.  Licences named in its copyright file (fonts etc., not
  used here): {lic_data}.
* **mate-backgrounds** (backgrounds `mate_*.jpg`, from
  `/usr/share/backgrounds/mate/nature/`): every file used here is listed with
  **License: GPL-2+** (Aqua: 2008 Charles Barbin; Blinds: 2008 Lennart
  Poettering; Dune: 2007 Marco Cogoni; GreenMeadow: 2005 Timothy Schellhase;
  RainDrops: 2008 "blackcombwhistler07"; Storm: 2008 Sergey Nazarov; Wood: 2008
  Jean-François Fortin Tam).  Licences named in its copyright file: {lic_mate}
  (CC-BY-SA-4.0 applies only to `desktop/Ubuntu-Mate-*-no-logo.png`, not used).

The bank (and images generated from it by `lib/data/tuxphoto.py`) is therefore
distributed under the GNU General Public License version 2 (GPL-2; the
"or later" option of the GPL-2+ parts is kept where it applies).  The
preferred form for modification of the original images is in the Debian
source packages `tuxpaint-stamps`, `tuxpaint` and `mate-backgrounds` of the
versions above (https://sources.debian.org/); the transformation is fully
described by `build_bank.py`.

    This program is free software; you can redistribute it and/or modify
    it under the terms of the GNU General Public License as published by
    the Free Software Foundation; version 2 of the License (or, for the
    GPL-2+ files, any later version).

    This program is distributed in the hope that it will be useful,
    but WITHOUT ANY WARRANTY; without even the implied warranty of
    MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
    GNU General Public License for more details.

The full text of the GPL-2 follows.

---

```
{gpl}
```
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "bank")
    ap.add_argument("--max-side", type=int, default=128)
    ap.add_argument("--cap", type=int, default=40)
    ap.add_argument("--min-count", type=int, default=8)
    ap.add_argument("--license", type=Path, default=HERE / "LICENSE.md")
    args = ap.parse_args(argv)

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tuxphoto_")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        pkgs = fetch_packages(workdir)
        stamps_root = pkgs["tuxpaint-stamps-default"]["root"] / STAMPS_DIR
        selected = select_sprites(stamps_root, args.cap, args.min_count)

        out = args.out.resolve()
        if out.exists():
            shutil.rmtree(out)
        (out / "sprites").mkdir(parents=True)
        classes = sorted(selected)
        sprites = []
        for cls in classes:
            used = set()
            for item in selected[cls]:
                rel = Path(item["rel"])
                name = re.sub(r"[^A-Za-z0-9_-]+", "_", rel.stem)
                if name in used:  # same file name in two source folders
                    name = re.sub(r"[^A-Za-z0-9_-]+", "_", rel.parent.name) + "_" + name
                used.add(name)
                dst = out / "sprites" / cls / f"{name}.png"
                w, h = save_sprite(item, dst, args.max_side)
                sprites.append(dict(path=dst.relative_to(out).as_posix(), **{"class": cls},
                                    source=f"tuxpaint-stamps-default:/{STAMPS_DIR}/{item['rel']}",
                                    width=w, height=h, unique_colours=item["colours"]))
        backgrounds = []
        for pkg, rel, name in BACKGROUNDS:
            src = pkgs[pkg]["root"] / rel
            dst = out / "backgrounds" / f"{name}.jpg"
            w, h = save_background(src, dst)
            backgrounds.append(dict(path=dst.relative_to(out).as_posix(), source=f"{pkg}:/{rel}",
                                    width=w, height=h))
        date = _dt.date.today().isoformat()
        index = dict(
            name="tuxphoto", version=1, built=date,
            packages={p: dict(version=i["version"], deb=i["deb"]) for p, i in pkgs.items()},
            classes=classes, sprites=sprites, backgrounds=backgrounds,
            build=dict(command="python3 data/tuxphoto/build_bank.py", max_side=args.max_side,
                       cap=args.cap, min_count=args.min_count),
        )
        (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")

        lic = licence_summary(pkgs)
        gpl_path = Path("/usr/share/common-licenses/GPL-2")
        gpl = gpl_path.read_text() if gpl_path.exists() else "(see https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt)"
        pkg_table = "| package | version | .deb |\n|---|---|---|\n" + "\n".join(
            f"| {p} | {i['version']} | {i['deb']} |" for p, i in pkgs.items())
        extra = []
        if args.max_side != 128:
            extra.append(f"--max-side {args.max_side}")
        if args.cap != 40:
            extra.append(f"--cap {args.cap}")
        if args.min_count != 8:
            extra.append(f"--min-count {args.min_count}")
        args.license.write_text(LICENSE_TEMPLATE.format(
            pkg_table=pkg_table, date=date, args="".join(" " + e for e in extra), cap=args.cap,
            max_side=args.max_side, bg=BG_SHORT_SIDE, q=BG_JPEG_QUALITY,
            lic_stamps=", ".join(lic["tuxpaint-stamps-default"]),
            lic_data=", ".join(lic["tuxpaint-data"]), lic_mate=", ".join(lic["mate-backgrounds"]),
            gpl=gpl.rstrip("\n")))

        total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"classes ({len(classes)}):")
        for c in classes:
            print(f"  {c:20s} {len(selected[c])}")
        print(f"sprites: {len(sprites)}, backgrounds: {len(backgrounds)}, bank size: {total / 1e6:.2f} MB")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
