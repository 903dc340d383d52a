#!/usr/bin/python3
"""Generate the golden files for the charset package tests (run once, by hand).

Usage: /usr/bin/python3 gen_golden.py CORPUS_DIR OUT_DIR

For every PN/LO/SH/ST/LT/UC/UT element (also inside sequences) of the chosen
corpus files this records the raw value bytes (hex, trailing space/NUL padding
removed), the Specific Character Set that applies to it (the item's own one,
else the inherited one), pydicom's decoded value(s), and "expected": the
values joined with '\\' (what Set.Decode of the whole raw value must give),
overridden with a "note" where pydicom is known to be wrong (OVERRIDES).
The Go tests never run Python; they only read the JSON written here.
"""
import json
import os
import sys
import warnings

import pydicom
from pydicom.dataelem import RawDataElement

VRS = {"PN", "LO", "SH", "ST", "LT", "UC", "UT"}
# Values where pydicom 2.3's decoding is wrong; "expected" is set by hand and
# the reason is kept in the golden file next to pydicom's own output.
OVERRIDES = {
    ("charset_gb2312_ir58.dcm", "(0010,0010)"): (
        "Zhang^XiaoDong=\u5f20^\u5c0f\u4e1c=",  # Zhang^XiaoDong=张^小东
        "pydicom 2.3 leaves the ESC $ ) A escape sequences in the string: "
        "its codec for ISO 2022 IR 58 ('iso_ir_58' = gb2312) is EUC-CN, "
        "not ISO 2022; D5C5 D0A1 B6AB are GB 2312 for the three hanzi",
    ),
}

FILES_EXTRA = ["mr_j2k_iso_ir13.dcm", "sr_latin2_ir101.dcm",
               "cr_referenced_by_gsps.dcm", "gsps_referencing_cr.dcm"]


def terms_of(cs):
    if cs is None:
        return []
    if isinstance(cs, str):
        return [cs]
    return [str(x) for x in cs]


def walk(ds, path, inherited, out, name):
    own = ds.get("SpecificCharacterSet", None) if (0x00080005 in ds) else None
    terms = terms_of(own) if own is not None else inherited
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        elem = ds[tag]
        p = "%s(%04X,%04X)" % (path, tag.group, tag.element)
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                walk(item, "%s[%d]" % (p, i), terms, out, name)
            continue
        if elem.VR not in VRS:
            continue
        rawval = raw.value if isinstance(raw, RawDataElement) else None
        if rawval is None:
            continue
        rawval = rawval.rstrip(b" \x00")
        if not rawval:
            continue
        v = elem.value
        if isinstance(v, (list, pydicom.multival.MultiValue)):
            vals = [str(x) for x in v]
        else:
            vals = [str(v)]
        expected = "\\".join(vals)
        # pydicom's PersonName drops empty trailing component groups
        # ("A^B=C^D=" becomes "A^B=C^D"); the '=' is part of the value bytes
        # and Set.Decode keeps it, so put it back.
        if elem.VR == "PN" and len(vals) == 1:
            missing = (len(rawval) - len(rawval.rstrip(b"="))) - \
                (len(expected) - len(expected.rstrip("=")))
            expected += "=" * max(missing, 0)
        rec = {
            "path": p,
            "vr": elem.VR,
            "charset": terms,
            "raw_hex": rawval.hex(),
            "pydicom": vals,
            "expected": expected,
        }
        if (name, p) in OVERRIDES:
            rec["expected"], rec["note"] = OVERRIDES[(name, p)]
        out.append(rec)


def main():
    corpus, outdir = sys.argv[1], sys.argv[2]
    names = sorted(n for n in os.listdir(corpus)
                   if n.startswith("charset_") and n.endswith(".dcm"))
    names += FILES_EXTRA
    for name in names:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(os.path.join(corpus, name), force=True)
            out = []
            walk(ds, "", terms_of(ds.get("SpecificCharacterSet", None)), out,
                 name)
        doc = {
            "file": name,
            "generator": "pydicom %s via testdata/gen_golden.py" % pydicom.__version__,
            "pydicom_warnings": sorted(set(str(x.message) for x in w)),
            "values": out,
        }
        with open(os.path.join(outdir, name[:-4] + ".json"), "w") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
