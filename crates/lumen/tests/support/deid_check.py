"""Checks a de-identified export against the objects it came from, with pydicom, and
against an independent de-identifier (dicognito) run on the same objects.

Usage: deid_check.py ORIGINAL_DIR DEIDENTIFIED_DIR [modified]
  ORIGINAL_DIR      the study exported as stored (`lumen export` without --deidentify)
  DEIDENTIFIED_DIR  the same studies exported with `lumen export --deidentify`
  modified          the export used --retain-dates: dates must be shifted, by one offset
                    per patient

Prints a JSON summary on stdout; exits 1 with the problems on stderr when a check fails.
The checks need no pairing of files (the new UIDs are keyed by a secret the test does not
know): values are compared by attribute path (tags from the top, item numbers left out).
"""
import collections
import hashlib
import json
import os
import sys

import pydicom
from pydicom.uid import UID_dictionary

import dicognito.anonymizer

# Attributes whose values dicognito replaces that the Basic Profile keeps, or that do not
# identify anyone; each difference is explained here.
JUSTIFIED = {
    # De-identification records: both tools write their own.
    "00120063": "De-identification Method: each tool writes its own",
    "00120064": "De-identification Method Code Sequence: each tool writes its own",
    "00120062": "Patient Identity Removed: YES in both",
    "00280303": "Longitudinal Temporal Information Modified: each tool writes its own",
    # UIDs that name no patient, study or instance: dicognito replaces every UID outside
    # the standard's registry; Table E.1-1 does not list these, so the profile keeps them.
    "0008010C": "Coding Scheme UID: names a coding scheme (an organisation's code list)",
    "00089123": "Creator-Version UID: names the software version that wrote the object",
    "0008010D": "Context Group Extension Creator UID: names who extended a context group",
    "00080117": "Context UID: names a context group",
    "00081150": "Referenced SOP Class UID: names a kind of object",
    "00080016": "SOP Class UID: names a kind of object",
    "00020002": "Media Storage SOP Class UID: names a kind of object",
}

TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"}


def load(path):
    return pydicom.dcmread(path, force=False)


def walk(ds, prefix=""):
    """(path, element) of every element, nested items included."""
    for elem in ds:
        tag = f"{elem.tag.group:04X}{elem.tag.element:04X}"
        path = f"{prefix}/{tag}" if prefix else tag
        if elem.VR == "SQ":
            yield path, elem
            for item in elem.value or []:
                yield from walk(item, path)
        else:
            yield path, elem


def strings(elem):
    """The element's values as strings ([] for binary values)."""
    if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ") or elem.value is None:
        return []
    v = elem.value
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
        return [str(x) for x in v if str(x) != ""]
    s = str(v)
    return [s] if s != "" else []


def pixel_key(ds):
    """Digest of the pixel data; an odd-length value (invalid: PS3.5 7.1.1 wants even
    lengths, as in highdicom's dx_image.dcm) counts with the zero byte a writer pads."""
    for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if kw in ds:
            v = ds[kw].value
            if len(v) % 2:
                v = v + b"\0"
            return hashlib.sha256(v).hexdigest()
    return None


def files(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".dcm"))


def main():
    orig_dir, deid_dir = sys.argv[1], sys.argv[2]
    problems = []
    originals = [load(p) for p in files(orig_dir)]
    deids = [load(p) for p in files(deid_dir)]
    if len(originals) != len(deids):
        problems.append(f"{len(originals)} originals but {len(deids)} de-identified files")

    # Values found at each path of the de-identified files.
    out_values = collections.defaultdict(set)
    out_text, out_uids = set(), set()
    for ds in deids:
        for path, elem in list(walk(ds)) + list(walk(ds.file_meta)):
            for s in strings(elem):
                out_values[path].add(s)
                if elem.VR == "UI":
                    if path.split("/")[-1] not in JUSTIFIED:
                        out_uids.add(s.strip())
                elif elem.VR in TEXT_VRS:
                    out_text.add(s.strip())

    # 1. No original patient name, ID, date or instance UID anywhere (meta included).
    forbidden = collections.defaultdict(set)
    for ds in originals:
        for path, elem in list(walk(ds)) + list(walk(ds.file_meta)):
            for s in strings(elem):
                s = s.strip()
                if not any(c.isalnum() for c in s):
                    continue
                if elem.keyword in ("PatientName", "PatientID", "OtherPatientIDs"):
                    forbidden["patient name or ID"].add(s)
                elif elem.VR in ("DA", "DT") and len(s) >= 8:
                    forbidden["date"].add(s)
                elif (
                    elem.VR == "UI"
                    and s not in UID_dictionary
                    and not s.startswith("1.2.840.10008.")
                    and path.split("/")[-1] not in JUSTIFIED
                ):
                    forbidden["UID"].add(s)
    modified = len(sys.argv) > 3 and sys.argv[3] == "modified"
    if modified:
        # Shifted dates: one patient's shifted date may equal another's original by chance
        # (shifts are 365 to 3,999 days): dates are checked per instance below (1b).
        forbidden.pop("date", None)
    leaks = {k: sorted(v & (out_uids if k == "UID" else out_text)) for k, v in forbidden.items()}
    for kind, values in leaks.items():
        if values:
            problems.append(f"original {kind} values remain: {values[:10]}")

    # 2. Pixel data byte for byte: the same multiset of pixel data digests.
    po = collections.Counter(pixel_key(ds) for ds in originals if pixel_key(ds))
    pd = collections.Counter(pixel_key(ds) for ds in deids if pixel_key(ds))
    if po != pd:
        problems.append(f"pixel data differ: {sum((po - pd).values())} original digests missing")

    # 3. Studies and series: instances of one original study share one new study UID.
    by_pixels = {}
    for ds in originals:
        k = pixel_key(ds)
        if k and po[k] == 1:
            by_pixels[k] = ds
    kept_studies = 0
    study_map = collections.defaultdict(set)
    series_map = collections.defaultdict(set)
    for ds in deids:
        k = pixel_key(ds)
        if k in by_pixels:
            o = by_pixels[k]
            study_map[str(o.StudyInstanceUID)].add(str(ds.StudyInstanceUID))
            series_map[str(o.SeriesInstanceUID)].add(str(ds.SeriesInstanceUID))
            kept_studies += str(ds.StudyInstanceUID) == str(o.StudyInstanceUID)
    if kept_studies:
        problems.append(f"{kept_studies} instance(s) kept their original Study Instance UID")
    for m, what in ((study_map, "study"), (series_map, "series")):
        split = [k for k, v in m.items() if len(v) != 1]
        if split:
            problems.append(f"{len(split)} original {what}(s) split across new UIDs")
        news = [next(iter(v)) for v in m.values()]
        if len(news) != len(set(news)):
            problems.append(f"different original {what}s merged into one new UID")

    # 1b. With modified dates, no date of an instance is kept at its path in that instance's
    # de-identified copy (paired by pixel data).
    if modified:
        deid_by_pixels = {}
        for ds in deids:
            k = pixel_key(ds)
            if k and pd[k] == 1:
                deid_by_pixels[k] = ds
        kept_dates = []
        for k, o in by_pixels.items():
            d = deid_by_pixels.get(k)
            if d is None:
                continue
            after = collections.defaultdict(set)
            for path, elem in walk(d):
                if elem.VR in ("DA", "DT"):
                    after[path].update(strings(elem))
            for path, elem in walk(o):
                if elem.VR in ("DA", "DT"):
                    same = {v for v in strings(elem) if len(v.strip()) >= 8} & after.get(path, set())
                    if same:
                        kept_dates.append((path, sorted(same)))
        if kept_dates:
            problems.append(f"original date values remain: {kept_dates[:10]}")

    # 4. De-identification recorded.
    for ds in deids:
        if ds.get("PatientIdentityRemoved") != "YES":
            problems.append("Patient Identity Removed is not YES")
            break
        codes = {(c.CodeValue, c.CodingSchemeDesignator) for c in ds.get("DeidentificationMethodCodeSequence", [])}
        if ("113100", "DCM") not in codes:
            problems.append("113100 missing from De-identification Method Code Sequence")
            break
        if any(e.tag.is_private for e in ds.iterall()):
            problems.append("a private attribute remains")
            break

    # 5. dicognito on the same originals: every value it removes or replaces must not
    # survive at the same path in Lumen's output.
    anonymizer = dicognito.anonymizer.Anonymizer(seed="lumen-test")
    replaced_by_dicognito = collections.defaultdict(set)
    for p in files(orig_dir):
        ds = load(p)
        before = collections.defaultdict(set)
        for path, elem in walk(ds):
            for s in strings(elem):
                before[path].add(s)
        anonymizer.anonymize(ds)
        after = collections.defaultdict(set)
        for path, elem in walk(ds):
            for s in strings(elem):
                after[path].add(s)
        for path, values in before.items():
            for s in values - after.get(path, set()):
                if s.strip() and int(path.split("/")[-1][:4], 16) % 2 == 0:
                    replaced_by_dicognito[path].add(s)
    disagreements = {}
    for path, values in replaced_by_dicognito.items():
        tag = path.split("/")[-1]
        if tag in JUSTIFIED:
            continue
        try:
            vr = pydicom.datadict.dictionary_VR(int(tag, 16))
        except KeyError:
            vr = ""
        if modified and vr in ("DA", "DT"):
            # Shifted, and checked per instance (1b): pooled here, another patient's
            # shifted date could equal this one's original by chance.
            continue
        if modified and vr == "TM":
            # Modified dates shift by whole days: times of day stay (dicognito shifts by
            # hours); a time of day without its date names no one.
            continue
        kept = values & out_values.get(path, set())
        if kept:
            disagreements[path] = sorted(kept)[:5]
    if disagreements:
        problems.append(f"values dicognito replaces but Lumen keeps: {disagreements}")

    # 6. Modified dates: every date shifted, by one whole number of days per patient.
    shifts = collections.defaultdict(set)
    if len(sys.argv) > 3 and sys.argv[3] == "modified":
        import datetime

        def day(v):
            return datetime.date(int(v[:4]), int(v[4:6]), int(v[6:8]))

        for ds in deids:
            if ds.get("LongitudinalTemporalInformationModified") != "MODIFIED":
                problems.append("Longitudinal Temporal Information Modified is not MODIFIED")
                break
            codes = {c.CodeValue for c in ds.get("DeidentificationMethodCodeSequence", [])}
            if "113107" not in codes:
                problems.append("113107 missing from De-identification Method Code Sequence")
                break
        for ds in deids:
            k = pixel_key(ds)
            if k not in by_pixels:
                continue
            o = by_pixels[k]
            for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
                a, b = str(o.get(kw, "") or ""), str(ds.get(kw, "") or "")
                if len(a) == 8 and a.isdigit():
                    if not (len(b) == 8 and b.isdigit()):
                        problems.append(f"{kw} not kept as a shifted date")
                        continue
                    # Lumen keys a patient by Patient ID (else name, else study).
                    key = str(o.get("PatientID", "") or "").strip()
                    key = key or str(o.get("PatientName", "") or "").strip() or str(o.StudyInstanceUID)
                    shifts[key].add((day(b) - day(a)).days)
                    if a == b:
                        problems.append(f"{kw} not shifted")
        for patient, days in shifts.items():
            if len(days) != 1:
                problems.append(f"one patient's dates shifted by different offsets: {sorted(days)}")

    summary = {
        "patients_with_shifted_dates": len(shifts),
        "originals": len(originals),
        "deidentified": len(deids),
        "forbidden_values_checked": {k: len(v) for k, v in forbidden.items()},
        "pixel_data_compared": sum(po.values()),
        "studies_paired": len(study_map),
        "series_paired": len(series_map),
        "dicognito_replaced_paths": len(replaced_by_dicognito),
        "dicognito_replaced_values": sum(len(v) for v in replaced_by_dicognito.values()),
    }
    print(json.dumps(summary))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        sys.exit(1)


main()
