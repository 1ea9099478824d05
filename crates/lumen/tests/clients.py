"""Drives a running Lumen with real third-party clients: pynetdicom and dicomweb-client.

Usage: clients.py HTTP_URL DICOM_PORT FILE... ; prints one JSON object with what was seen.
The bearer tokens come from the environment: LUMEN_STORE_TOKEN (a technologist's, for
STOW-RS) and LUMEN_TOKEN (a radiologist's, for QIDO-RS and WADO-RS).
The Rust test asserts on it; this script only reports (and fails on client exceptions).
"""
import hashlib
import io
import json
import os
import sys

import pydicom
from dicomweb_client.api import DICOMwebClient
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

url, dicom_port, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
out = {}

# --- pynetdicom: C-ECHO and C-STORE of the first half
ae = AE(ae_title="PYNETDICOM")
ae.add_requested_context(Verification)
ae.add_requested_context(CTImageStorage)
ae.add_requested_context(MRImageStorage)
assoc = ae.associate("127.0.0.1", dicom_port, ae_title="LUMEN")
assert assoc.is_established, "association rejected"
out["echo_status"] = assoc.send_c_echo().Status
half = files[: len(files) // 2]
statuses = []
for f in half:
    ds = pydicom.dcmread(f)
    statuses.append(assoc.send_c_store(ds).Status)
assoc.release()
out["store_statuses"] = statuses

# --- dicomweb-client: STOW the second half, then QIDO and WADO
def bearer(var):
    return {"Authorization": f"Bearer {os.environ[var]}"}


stow_client = DICOMwebClient(url=url, headers=bearer("LUMEN_STORE_TOKEN"))
client = DICOMwebClient(url=url, headers=bearer("LUMEN_TOKEN"))
second = [pydicom.dcmread(f) for f in files[len(files) // 2 :]]
stow = stow_client.store_instances(second)
out["stow_referenced"] = len(stow.get("ReferencedSOPSequence", []))
out["stow_failed"] = len(stow.get("FailedSOPSequence", [])) if "FailedSOPSequence" in stow else 0

studies = client.search_for_studies()
out["studies"] = len(studies)
study_uid = studies[0]["0020000D"]["Value"][0]
out["study_instances"] = studies[0]["00201208"]["Value"][0]
series = client.search_for_series(study_uid)
out["series"] = len(series)
series_uid = series[0]["0020000E"]["Value"][0]
instances = client.search_for_instances(study_uid, series_uid)
out["instances"] = len(instances)
out["limit2"] = len(client.search_for_instances(study_uid, series_uid, limit=2))
out["wildcard"] = len(client.search_for_studies(search_filters={"PatientID": "*"}))

src = pydicom.dcmread(files[0])
inst = client.retrieve_instance(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID)
out["retrieved_pixels_equal"] = inst.PixelData == src.PixelData
out["retrieved_sop"] = inst.SOPInstanceUID == src.SOPInstanceUID

meta = client.retrieve_series_metadata(src.StudyInstanceUID, src.SeriesInstanceUID)
out["metadata_items"] = len(meta)
out["metadata_has_bulk_uri"] = all("BulkDataURI" in m.get("7FE00010", {}) for m in meta)

mine = [m for m in meta if m["00080018"]["Value"][0] == src.SOPInstanceUID][0]
bulk = client.retrieve_bulkdata(mine["7FE00010"]["BulkDataURI"])
out["bulkdata_equal"] = b"".join(bulk) == src.PixelData

frames = client.retrieve_instance_frames(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID, frame_numbers=[1])
out["frame_bytes"] = len(frames[0])
out["frame_equal"] = frames[0] == src.PixelData[: len(frames[0])]

img = client.retrieve_instance_rendered(
    src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID, media_types=("image/jpeg",),
    params={"window": "-600,1500,LINEAR"},
)
out["rendered_jpeg"] = img[:2] == b"\xff\xd8" and img[-2:] == b"\xff\xd9"
png = client.retrieve_instance_rendered(
    src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID, media_types=("image/png",),
)
out["rendered_png"] = png[:8] == b"\x89PNG\r\n\x1a\n"
series_all = client.retrieve_series(src.StudyInstanceUID, src.SeriesInstanceUID)
out["series_retrieved"] = len(series_all)
print(json.dumps(out))
