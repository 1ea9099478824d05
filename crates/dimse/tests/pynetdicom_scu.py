"""Drive a DICOM SCP with pynetdicom: C-ECHO, then C-STORE of Part-10 files sent raw.

usage: pynetdicom_scu.py HOST PORT CALLED_AE MAX_PDU FILE...
Prints one JSON object: {"echo": status, "stores": [[path, status], ...]}.
"""
import json
import sys

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification

host, port, called, max_pdu = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
files = sys.argv[5:]

ae = AE(ae_title="PYNETDICOM")
ae.maximum_pdu_size = max_pdu
ae.add_requested_context(Verification)
pairs = []
for f in files:
    meta = dcmread(f, stop_before_pixels=True).file_meta
    pair = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
    if pair not in pairs:
        pairs.append(pair)
for sop_class, ts in pairs:
    ae.add_requested_context(sop_class, [ts])

assoc = ae.associate(host, port, ae_title=called)
if not assoc.is_established:
    print(json.dumps({"error": "association not established"}))
    sys.exit(2)
out = {"echo": int(assoc.send_c_echo().Status), "stores": []}
for i, f in enumerate(files):
    # A path is sent as the file's encoded data set, without decoding.
    rsp = assoc.send_c_store(f, msg_id=i + 1)
    out["stores"].append([f, int(rsp.Status) if "Status" in rsp else -1])
assoc.release()
print(json.dumps(out))
