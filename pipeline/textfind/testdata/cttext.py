#!/usr/bin/python3
"""Burn a name, an ID and a date into CT/MR slices, as a scanner's console prints them, for the textfind tests.

    cttext.py SRC OUTDIR [--seed N] [--variants K]

SRC is the shared corpus (its MANIFEST.tsv picks the CT and MR slices) or a
directory of .dcm slices (a benchmark workload). Each slice of 128 px or
more gets K variants: two or three lines in one or two corners, 10-20 px,
a TrueType font, drawn at the slice's maximum stored value (white on the
black air around the body) before the frame is windowed from its min to its
max (as burnin.Luminance does). Writes OUTDIR/<name>-<k>.png, the luminance,
and OUTDIR/<name>-<k>.mask.png, 255 on glyph pixels. Prints one line a file.
"""
import csv
import os
import random
import sys

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont

FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"]
NAMES = ["KOWALCZYK^JADWIGA", "Villeneuve^Remedios", "MACGILLIVRAY, EILIDH", "Okonkwo-Hartmann C", "Delacroix^Ottoline"]


def slices(src):
    man = os.path.join(src, "MANIFEST.tsv")
    if os.path.exists(man):
        with open(man, encoding="utf-8") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                if r["modality"] in ("CT", "MR"):
                    yield r["file"][:-4], os.path.join(src, r["file"])
        return
    for root, _, files in sorted(os.walk(src)):
        for fn in sorted(files):
            if fn.endswith(".dcm"):
                p = os.path.join(root, fn)
                yield os.path.relpath(p, src)[:-4].replace(os.sep, "_"), p


def main() -> None:
    src, out = sys.argv[1:3]
    args = sys.argv[3:]
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 1
    variants = int(args[args.index("--variants") + 1]) if "--variants" in args else 2
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    fonts = [f for f in FONTS if os.path.exists(f)]
    for name, path in slices(src):
        try:
            ds = pydicom.dcmread(path)
            a = ds.pixel_array
        except Exception:  # undecodable here: not part of the figure
            continue
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            a = a[0]
        if a.ndim != 2 or min(a.shape) < 128:
            continue
        a = a.astype(np.float64)
        lo, hi = a.min(), a.max()
        if hi <= lo:
            continue
        h, w = a.shape
        for k in range(variants):
            size = rng.randint(10, 20)
            font = ImageFont.truetype(rng.choice(fonts), size) if fonts else ImageFont.load_default()
            lines = [rng.choice(NAMES), "ID %08d" % rng.randint(0, 99999999),
                     "%04d-%02d-%02d %02d:%02d" % (rng.randint(1930, 2024), rng.randint(1, 12), rng.randint(1, 28),
                                                   rng.randint(0, 23), rng.randint(0, 59))]
            layer = Image.new("L", (w, h), 0)
            d = ImageDraw.Draw(layer)
            corners = rng.sample(["tl", "tr", "bl", "br"], rng.choice([1, 2]))
            groups = [lines] if len(corners) == 1 else [lines[:1], lines[1:]]
            for corner, group in zip(corners, groups):
                step = size + size // 4
                for i, s in enumerate(group):
                    x0, y0, x1, y1 = d.textbbox((0, 0), s, font=font)
                    tw = x1 - x0
                    x = 4 if corner[1] == "l" else max(w - tw - 4, 0)
                    y = 4 + i * step if corner[0] == "t" else h - 4 - (len(group) - i) * step
                    d.text((x - x0, y - y0), s, font=font, fill=255)
            cov = np.asarray(layer, np.float64) / 255.0
            b = a * (1 - cov) + hi * cov  # anti-aliased edges blend into the slice
            y = np.floor((b - lo) * 255.0 / (hi - lo))
            if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
                y = 255 - y
            base = "%s-%d" % (name, k)
            Image.fromarray(np.clip(y, 0, 255).astype(np.uint8)).save(os.path.join(out, base + ".png"))
            Image.fromarray(((cov >= 0.5) * 255).astype(np.uint8)).save(os.path.join(out, base + ".mask.png"))
            print(base)


if __name__ == "__main__":
    main()
