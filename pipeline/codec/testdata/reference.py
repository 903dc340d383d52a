#!/usr/bin/python3
"""Reference pixel values for the codec tests, from pydicom 2.3 with
GDCM (python3-gdcm) and, separately, Pillow (python3-pil).

usage: reference.py OUTDIR FILE...

For each FILE and each handler that decodes it, writes
OUTDIR/<name>.<handler>.raw (every frame, row, column and sample in that
order, little endian, the pixel array's own integer width) and one
OUTDIR/index.json: {name: {handler: {"dtype", "shape", "photometric",
"error"}}}. pydicom hands back colour JPEG in YBR when its handler does
not convert; such arrays are converted to RGB here (pydicom's
convert_color_space), as the Go decoders do, and "converted" says so.

pydicom 2.3 decodes neither HTJ2K nor Deflated Image Frame Compression:
for those the "openjpeg-cli" reference is OpenJPEG's own opj_decompress
(libopenjp2-tools; not independent of the Go build's OpenJPEG, but of its
wrapper and the frame splitting) and the "zlib" reference is Python's
zlib with numpy's unpackbits.
"""
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pydicom
from pydicom.pixel_data_handlers import gdcm_handler, pillow_handler, numpy_handler, rle_handler
from pydicom.encaps import generate_pixel_data_frame
from pydicom.pixel_data_handlers.util import convert_color_space
from PIL import Image

HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"

HANDLERS = {"gdcm": [gdcm_handler, numpy_handler, rle_handler], "pillow": [pillow_handler, numpy_handler, rle_handler]}


def read(path):
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # no File Meta: as read
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian if ds.is_implicit_VR else (
            pydicom.uid.ExplicitVRLittleEndian if ds.is_little_endian else pydicom.uid.ExplicitVRBigEndian)
    return ds


def other(ds, ts):
    """HTJ2K through opj_decompress, deflated frames through zlib."""
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    rows, cols, spp = int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel)
    out = []
    for fr in generate_pixel_data_frame(ds.PixelData, frames):
        if ts == DEFLATED_FRAMES:
            raw = zlib.decompress(fr, -15)
            if int(ds.BitsAllocated) == 1:
                a = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[: rows * cols]
            else:
                a = np.frombuffer(raw, "<u%d" % (int(ds.BitsAllocated) // 8))[: rows * cols * spp]
            out.append(a.astype(np.uint8 if int(ds.BitsAllocated) <= 8 else a.dtype))
            continue
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "f.j2k"), os.path.join(d, "f.ppm" if spp == 3 else "f.pgm")
            open(src, "wb").write(fr)
            subprocess.run(["opj_decompress", "-i", src, "-o", dst], check=True, capture_output=True)
            out.append(np.asarray(Image.open(dst)))
    return np.stack(out)


def main():
    out, files = sys.argv[1], sys.argv[2:]
    index = {}
    for path in files:
        name = os.path.basename(path)
        entry = index.setdefault(name, {})
        handlers = dict(HANDLERS)
        try:
            ts0 = str(read(path).file_meta.TransferSyntaxUID)
        except Exception:
            ts0 = ""
        if ts0 in HTJ2K:
            handlers = {"openjpeg-cli": None}
        elif ts0 == DEFLATED_FRAMES:
            handlers = {"zlib": None}
        for hname, hs in handlers.items():
            if hs:
                pydicom.config.pixel_data_handlers = hs
            try:
                ds = read(path)
                if "PixelData" not in ds:
                    entry[hname] = {"error": "no pixel data"}
                    continue
                arr = ds.pixel_array if hs else other(ds, ts0)
                frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
                spp = int(getattr(ds, "SamplesPerPixel", 1))
                pi = str(ds.PhotometricInterpretation)
                converted = False
                ts = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in ds.file_meta else ""
                if spp == 3 and pi in ("YBR_FULL", "YBR_FULL_422") and ts in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"):
                    # A handler that left YCbCr: convert, as libjpeg does.
                    if getattr(ds, "PhotometricInterpretation", pi) in ("YBR_FULL", "YBR_FULL_422"):
                        arr = convert_color_space(arr, "YBR_FULL", "RGB")
                        converted = True
                arr = np.ascontiguousarray(arr.reshape(frames, int(ds.Rows), int(ds.Columns), spp))
                if arr.dtype.kind == "i":
                    arr = arr.view(arr.dtype.str.replace("i", "u"))
                arr = arr.astype(arr.dtype.newbyteorder("<"))
                arr.tofile(os.path.join(out, f"{name}.{hname}.raw"))
                entry[hname] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "photometric": pi, "converted": converted}
            except Exception as e:  # the reference could not decode it
                entry[hname] = {"error": type(e).__name__ + ": " + str(e)[:200]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
