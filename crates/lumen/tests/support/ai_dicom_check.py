"""Reads Lumen's AI SEG and SR with highdicom and prints what it finds as JSON.

Usage: ai_dicom_check.py SEG.dcm SR.dcm
"""

import json
import sys

import highdicom as hd
import numpy as np
import pydicom


def cv(x):
    """The code value of a CodedConcept or of a CODE content item."""
    while x is not None and not isinstance(x, str):
        x = x.value
    return x


def read_seg(path):
    seg = hd.seg.segread(path)
    numbers = [int(n) for n in seg.get_segment_numbers()]
    uids = [u[2] for u in seg.get_source_image_uids()]
    arr = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=numbers, combine_segments=False
    )
    out = {"segments": {}}
    for i, n in enumerate(numbers):
        d = seg.get_segment_description(n)
        out["segments"][str(n)] = {
            "label": d.segment_label,
            "type": d.segmented_property_type.value,
            "category": d.segmented_property_category.value,
            "voxels": int(np.count_nonzero(arr[..., i])),
            "cielab": [int(v) for v in d.RecommendedDisplayCIELabValue]
            if "RecommendedDisplayCIELabValue" in d
            else None,
        }
    return out


def read_sr(path):
    sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(path))
    content = sr.content
    groups = (
        content.get_volumetric_roi_measurement_groups()
        + content.get_planar_roi_measurement_groups()
    )
    out = {"groups": []}
    for g in groups:
        item = {
            "tracking_id": g.tracking_identifier,
            "tracking_uid": g.tracking_uid,
            "finding": cv(g.finding_type),
            "measurements": {cv(m.name): float(m.value) for m in g.get_measurements()},
        }
        out["groups"].append(item)
    return out


print(json.dumps({"highdicom": hd.__version__, "seg": read_seg(sys.argv[1]), "sr": read_sr(sys.argv[2])}))
