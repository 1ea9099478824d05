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
            "finding": g.finding_type.value if g.finding_type is not None else None,
            "finding_sites": [s.value for s in g.finding_sites],
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
                "concept": m.name.value,
                "value": float(m.value),
                "unit": m.unit.value,
                "derivation": m.derivation.value if m.derivation is not None else None,
            })
        for q in g.get_qualitative_evaluations():
            item["qualitative"].append({"concept": q.name.value, "value": q.value.value})
        out["groups"].append(item)
    out["algorithm"] = None
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
