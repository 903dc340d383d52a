#!/usr/bin/python3
"""Decoding speed per frame of each pixel codec, as a ratio to the peers
GDCM (gdcmconv --raw) and DCMTK (dcmdjpeg, dcmdjpls, dcmdrle) on the
same files in the same run. HTJ2K: OpenJPH's ojph_expand (GDCM 3.0.21
and DCMTK 3.6.7 do not decode it).

usage: bench-codecs.py WORKDIR     (scripts/bench-codecs runs it)

Makes two multi-frame images in explicit LE: 640x480 RGB 8-bit (the
corpus's sc_htj2k_lossless.dcm pixels, shifted per frame) and 512x512
unsigned 12-bit in 16 (the corpus CT slice, offset and clipped), then
encodes them in every syntax with DCMTK, GDCM and OpenJPH, and times
the peers (best of 3 runs; a peer's time includes its process start and
file I/O, so its time on the explicit LE file, which it only copies, is
printed as its overhead). The Go side is `go test -bench
BenchmarkDecode` over the same files (ns per frame), run by the caller.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_pixel_data_frame
from pydicom.uid import generate_uid, ExplicitVRLittleEndian
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus")
FRAMES = 8


def base(rows, cols, spp, bits, stored, sop):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = sop, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "OT", "Bench^Codec", "BENCH1"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.PhotometricInterpretation = "RGB" if spp == 3 else "MONOCHROME2"
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, stored, stored - 1, 0
    ds.NumberOfFrames = FRAMES
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def sources(work):
    """The two explicit LE images."""
    tmp = tempfile.mkdtemp()
    ds = pydicom.dcmread(os.path.join(CORPUS, "sc_htj2k_lossless.dcm"))
    fr = next(generate_pixel_data_frame(ds.PixelData, 1))
    open(os.path.join(tmp, "f.j2k"), "wb").write(fr)
    subprocess.run(["opj_decompress", "-i", os.path.join(tmp, "f.j2k"), "-o", os.path.join(tmp, "f.ppm")], check=True, capture_output=True)
    rgb = np.asarray(Image.open(os.path.join(tmp, "f.ppm")))
    out = base(480, 640, 3, 8, 8, "1.2.840.10008.5.1.4.1.1.7.4")
    out.PixelData = np.stack([np.roll(rgb, 7 * i, axis=1) for i in range(FRAMES)]).tobytes()
    out.save_as(os.path.join(work, "rgb640.le.dcm"), write_like_original=False)
    ct = pydicom.dcmread(os.path.join(CORPUS, "ct_referenced_by_rtstruct.dcm")).pixel_array.astype(np.int32)
    g = np.clip(ct + 1024, 0, 4095).astype(np.uint16)
    out = base(512, 512, 1, 16, 12, "1.2.840.10008.5.1.4.1.1.7.3")
    out.PixelData = np.stack([np.roll(g, 5 * i, axis=0) for i in range(FRAMES)]).astype("<u2").tobytes()
    out.save_as(os.path.join(work, "mono512.le.dcm"), write_like_original=False)
    shutil.rmtree(tmp)


def htj2k(src, dst, reversible):
    """HTJ2K frames with ojph_compress, encapsulated by pydicom."""
    ds = pydicom.dcmread(src)
    spp, rows, cols = int(ds.SamplesPerPixel), int(ds.Rows), int(ds.Columns)
    a = ds.pixel_array.reshape(FRAMES, rows, cols, spp)
    tmp = tempfile.mkdtemp()
    frames = []
    for i in range(FRAMES):
        if spp == 3:
            p = os.path.join(tmp, "f.ppm")
            Image.fromarray(a[i]).save(p)
        else:
            # 16-bit PGM for ojph_compress (big endian, maxval 4095)
            p = os.path.join(tmp, "f.pgm")
            with open(p, "wb") as f:
                f.write(b"P5\n%d %d\n4095\n" % (cols, rows))
                f.write(a[i, ..., 0].astype(">u2").tobytes())
        o = os.path.join(tmp, "f.j2c")
        args = ["ojph_compress", "-i", p, "-o", o]
        args += ["-reversible", "true"] if reversible else ["-qstep", "0.005"]
        subprocess.run(args, check=True, capture_output=True)
        frames.append(open(o, "rb").read())
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    want = "1.2.840.10008.1.2.4.201" if reversible else "1.2.840.10008.1.2.4.203"
    # pydicom 2.3 does not know the HTJ2K UIDs: written as another
    # encapsulated syntax of the same length, then the UID is replaced.
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    if spp == 3 and not reversible:
        ds.PhotometricInterpretation = "YBR_ICT"
    elif spp == 3:
        ds.PhotometricInterpretation = "YBR_RCT"
    ds.save_as(dst, write_like_original=False)
    b = open(dst, "rb").read()
    assert b.count(b"1.2.840.10008.1.2.4.100") == 1
    open(dst, "wb").write(b.replace(b"1.2.840.10008.1.2.4.100", want.encode()))
    shutil.rmtree(tmp)


# (name, syntax, encoder command (src, dst), peer decoders)
def encodings(rgb):
    e = [
        ("rle", "1.2.840.10008.1.2.5", ["dcmcrle"], ["gdcm", "dcmdrle"]),
        ("jpeg-ext", "1.2.840.10008.1.2.4.51", ["dcmcjpeg", "+ee"], ["gdcm", "dcmdjpeg"]),
        ("jpeg-ll14", "1.2.840.10008.1.2.4.57", ["dcmcjpeg", "+el"], ["gdcm", "dcmdjpeg"]),
        ("jpeg-sv1", "1.2.840.10008.1.2.4.70", ["dcmcjpeg", "+e1"], ["gdcm", "dcmdjpeg"]),
        ("jpegls", "1.2.840.10008.1.2.4.80", ["dcmcjpls", "+el"], ["gdcm", "dcmdjpls"]),
        ("jpegls-near", "1.2.840.10008.1.2.4.81", ["dcmcjpls", "+en"], ["gdcm", "dcmdjpls"]),
        ("j2k", "1.2.840.10008.1.2.4.90", ["gdcmconv", "--j2k"], ["gdcm", "gdcm-1core"]),
        ("j2k-lossy", "1.2.840.10008.1.2.4.91", ["gdcmconv", "--j2k", "--lossy", "-q", "40"], ["gdcm", "gdcm-1core"]),
        ("htj2k", "1.2.840.10008.1.2.4.201", "htj2k-rev", ["ojph"]),
        ("htj2k-lossy", "1.2.840.10008.1.2.4.203", "htj2k-irrev", ["ojph"]),
    ]
    if rgb:
        e.insert(1, ("jpeg-baseline", "1.2.840.10008.1.2.4.50", ["dcmcjpeg", "+eb"], ["gdcm", "dcmdjpeg"]))
    return e


def peer_cmd(peer, src, dst, tmp):
    if peer == "gdcm":
        return [["gdcmconv", "--raw", src, dst]]
    if peer == "gdcm-1core":  # GDCM runs OpenJPEG on every core; ours on one per frame
        return [["taskset", "-c", "0", "gdcmconv", "--raw", src, dst]]
    if peer == "ojph":
        ds = pydicom.dcmread(src)
        cmds = []
        for i, fr in enumerate(generate_pixel_data_frame(ds.PixelData, FRAMES)):
            p = os.path.join(tmp, "f%d.j2c" % i)
            open(p, "wb").write(fr)
            cmds.append(["ojph_expand", "-i", p, "-o", os.path.join(tmp, "f%d.%s" % (i, "ppm" if ds.SamplesPerPixel == 3 else "pgm"))])
        return cmds
    return [[peer, src, dst]]


def timed(cmds):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True)
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return best


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    sources(work)
    rows = []
    tmp = tempfile.mkdtemp()
    for img in ("rgb640", "mono512"):
        src = os.path.join(work, img + ".le.dcm")
        over = {p: timed(peer_cmd(p, src, os.path.join(tmp, "o.dcm"), tmp)) / FRAMES for p in ("gdcm", "dcmdjpeg")}
        rows.append({"image": img, "codec": "explicit-le", "syntax": "1.2.840.10008.1.2.1", "file": src,
                     "peers": {"gdcm": over["gdcm"], "dcmdjpeg": over["dcmdjpeg"]}})
        for name, ts, enc, peers in encodings(img == "rgb640"):
            dst = os.path.join(work, "%s.%s.dcm" % (img, name))
            if isinstance(enc, str):
                htj2k(src, dst, enc == "htj2k-rev")
            else:
                subprocess.run(enc + [src, dst], check=True, capture_output=True)
            got = str(pydicom.dcmread(dst, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            if got != ts:
                sys.exit("%s: encoded as %s, want %s" % (dst, got, ts))
            r = {"image": img, "codec": name, "syntax": ts, "file": dst, "peers": {}}
            for p in peers:
                r["peers"][p] = timed(peer_cmd(p, dst, os.path.join(tmp, "o.dcm"), tmp)) / FRAMES
            rows.append(r)
    shutil.rmtree(tmp)
    json.dump(rows, open(os.path.join(work, "peers.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
