#!/usr/bin/python3
"""Export the first frame of DICOM images as 8-bit luminance PNGs for the textfind tests.

    export.py burnin WORKLOAD OUTDIR   genburnin.py workload: OUTDIR/<name>.png per truth.json file
    export.py corpus CORPUS OUTDIR     CT/MR slices of the shared corpus (MANIFEST.tsv), windowed min..max
    export.py slices DIR OUTDIR        every .dcm under DIR (a benchmark workload), windowed min..max

Luminance is what the caller hands textfind: RGB (or YBR decoded to RGB) as
ITU-R 601 luma, monochrome scaled from its stored bits (burnin) or windowed
from its min to its max (corpus). Prints one line per written file: name.
"""
import csv
import json
import os
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixel_data_handlers.util import convert_color_space


def luminance(ds, window: bool) -> np.ndarray:
    a = ds.pixel_array
    nf = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if nf > 1:
        a = a[0]
    pi = str(getattr(ds, "PhotometricInterpretation", ""))
    if spp == 3:
        if pi.startswith("YBR"):
            a = convert_color_space(a, pi, "RGB")
        a = a.astype(np.float64)
        y = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)
    a = a.astype(np.float64)
    if window:
        lo, hi = a.min(), a.max()
        if hi <= lo:
            return np.zeros(a.shape, np.uint8)
        y = np.floor((a - lo) * 255.0 / (hi - lo))  # as burnin.Luminance: truncated
    else:
        bits = int(getattr(ds, "BitsStored", 8) or 8)
        y = a * 255.0 / ((1 << bits) - 1)
    if pi == "MONOCHROME1":
        y = 255 - y
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def main() -> None:
    mode, src, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    if mode == "burnin":
        truth = json.load(open(os.path.join(src, "truth.json"), encoding="utf-8"))
        for f in truth["files"]:
            ds = pydicom.dcmread(os.path.join(src, "dicom", f["file"]))
            Image.fromarray(luminance(ds, False)).save(os.path.join(out, f["name"] + ".png"))
            print(f["name"])
        return
    if mode == "slices":
        for root, _, files in sorted(os.walk(src)):
            for fn in sorted(files):
                if not fn.endswith(".dcm"):
                    continue
                ds = pydicom.dcmread(os.path.join(root, fn))
                name = os.path.relpath(os.path.join(root, fn), src)[:-4].replace(os.sep, "_")
                Image.fromarray(luminance(ds, True)).save(os.path.join(out, name + ".png"))
                print(name)
        return
    with open(os.path.join(src, "MANIFEST.tsv"), encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for r in rows:
        if r["modality"] not in ("CT", "MR"):
            continue
        try:
            ds = pydicom.dcmread(os.path.join(src, r["file"]))
            y = luminance(ds, True)
        except Exception:  # undecodable here: not part of the screen figure
            continue
        if y.ndim != 2:
            continue
        name = r["file"][:-4]
        Image.fromarray(y).save(os.path.join(out, name + ".png"))
        print(name)


if __name__ == "__main__":
    main()
