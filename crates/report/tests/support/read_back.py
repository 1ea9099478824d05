"""Reads Lumen's SEG (and SR) back with highdicom and prints what it finds as JSON.

Usage: read_back.py INPUT.json, where INPUT has "seg" (path), "sources" (list of
{"uid", "position"} in mask order) and optionally "sr" (path).
Masks are printed as runs [start, length] over the flattened [slice][row][column] source grid.
"""

import json
import sys

import highdicom as hd
import numpy as np


def runs(flat):
    flat = np.asarray(flat, dtype=np.uint8).ravel()
    padded = np.concatenate([[0], flat, [0]])
    d = np.diff(padded.astype(np.int8))
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0]
    return [[int(s), int(e - s)] for s, e in zip(starts, ends)]


def read_seg(path, sources):
    seg = hd.seg.segread(path)
    uids = [s["uid"] for s in sources]
    numbers = [int(n) for n in seg.get_segment_numbers()]
    out = {"segment_numbers": numbers, "labels": {}, "by_source": {}, "by_volume": {}}
    for n in numbers:
        d = seg.get_segment_description(n)
        out["labels"][str(n)] = {
            "label": d.segment_label,
            "type": d.segmented_property_type.value,
            "category": d.segmented_property_category.value,
        }
    arr = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=numbers, combine_segments=False
    )
    for i, n in enumerate(numbers):
        out["by_source"][str(n)] = runs(arr[..., i])

    # Through the volume API: place each volume slice on the source grid by its position.
    vol = seg.get_volume(segment_numbers=numbers, combine_segments=False)
    affine = np.asarray(vol.affine)
    shape = (len(sources),) + tuple(vol.spatial_shape[1:])
    positions = np.array([s["position"] for s in sources])
    grid = np.zeros(shape + (len(numbers),), dtype=np.uint8)
    data = np.asarray(vol.array)
    for k in range(vol.spatial_shape[0]):
        p = affine @ np.array([k, 0, 0, 1.0])
        dist = np.linalg.norm(positions - p[:3], axis=1)
        z = int(np.argmin(dist))
        if dist[z] > 1e-3:
            raise SystemExit(f"volume slice {k} at {p[:3]} matches no source slice")
        grid[z] = data[k]
    out["volume_affine"] = affine.tolist()
    for i, n in enumerate(numbers):
        out["by_volume"][str(n)] = runs(grid[..., i])
    return out


def cv(x):
    """The code value of a CodedConcept or of a CODE content item."""
    while x is not None and not isinstance(x, str):
        x = x.value
    return x


def read_sr(path):
    import pydicom

    ds = pydicom.dcmread(path)
    sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    content = sr.content
    out = {"groups": []}
    groups = content.get_volumetric_roi_measurement_groups() + content.get_planar_roi_measurement_groups()
    for g in groups:
        item = {
            "tracking_id": g.tracking_identifier,
            "tracking_uid": g.tracking_uid,
            "finding": cv(g.finding_type),
            "finding_sites": [cv(s) for s in g.finding_sites],
            "measurements": [],
            "qualitative": [],
            "segment": None,
        }
        seg = getattr(g, "referenced_segment", None)
        if seg is not None:
            item["segment"] = [seg.referenced_sop_instance_uid, int(seg.referenced_segment_numbers[0])
                               if hasattr(seg, "referenced_segment_numbers") else None]
        for m in g.get_measurements():
            item["measurements"].append({
                "concept": cv(m.name),
                "value": float(m.value),
                "unit": cv(m.unit),
                "derivation": cv(m.derivation),
            })
        for q in g.get_qualitative_evaluations():
            item["qualitative"].append({"concept": cv(q.name), "value": cv(q.value)})
        out["groups"].append(item)
    # Exam-level items and the device observer, by walking the content tree.
    out["summary"] = []
    out["observer"] = {}
    for item in ds.ContentSequence:
        name = item.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in item else None
        if item.RelationshipType == "HAS OBS CONTEXT" and item.ValueType == "TEXT":
            out["observer"][name] = item.TextValue
        if item.ValueType == "CONTAINER" and name == "Qualitative Evaluations":
            for q in item.ContentSequence:
                concept = q.ConceptNameCodeSequence[0].CodeValue
                if q.ValueType == "TEXT":
                    out["summary"].append({"concept": concept, "text": q.TextValue})
                else:
                    out["summary"].append({"concept": concept, "code": q.ConceptCodeSequence[0].CodeValue})
    out["evidence"] = sorted(
        r.ReferencedSOPInstanceUID
        for s in ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for r in s.ReferencedSOPSequence
    )
    return out


def main():
    with open(sys.argv[1]) as f:
        inp = json.load(f)
    out = {"highdicom": hd.__version__}
    if inp.get("seg"):
        out["seg"] = read_seg(inp["seg"], inp["sources"])
    if inp.get("sr"):
        out["sr"] = read_sr(inp["sr"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
