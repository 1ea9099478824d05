#!/usr/bin/env python3
"""Make a server-neutral copy of the peer's bench.py (written at run time by
../shared/peers/orthanc-bench.sh) so the *same* loads run against Orthanc and Lumen.

Usage: adapt_bench.py PEER_BENCH_PY OUT_PY

Nothing of the peer script is copied into this repository: the peer's bench.py is read at
run time and patched with exact-text anchors (the run fails loudly if an anchor is missing,
i.e. if the peer script changed).  Every server-specific step is routed through
bench_hooks.py (imported as HOOKS); for Orthanc the hooks keep the original behaviour.

Adaptations (also written into the results JSON under "adaptations"):
  1. /system (Orthanc REST) for the run metadata -> HOOKS.server_info().
  2. wipe(): Orthanc deletes every study through its REST API; Lumen has no delete, so the
     hook restarts Lumen on a fresh, empty data directory (untimed, like Orthanc's wipe).
  3. count_instances(): Orthanc /statistics; Lumen: QIDO-RS /dicom-web/instances.
  4. rss(): reads the *current* server PID (Lumen's changes on every wipe).
  5. throughput(): a 20 ms VmRSS sampler runs during every timed repetition; the per-rep
     peak VmRSS and the VmHWM at its end go to results["rss_peak_mib"][name].
  6. throughput()/latency(): a measurement the server cannot do (Lumen has no C-FIND) is
     recorded in results["failed"] instead of aborting the whole run.
  7. The Orthanc-native REST rendering block (/instances/{orthanc-id}/rendered, /preview)
     runs for Orthanc only.
  8. One extra latency: WADO-RS frames/1/rendered JPEG (the issue's rendered-frame URL).
  9. One extra latency: C-FIND at study level from pynetdicom within one association (the
     server's own C-FIND time, without findscu's process start), unless pynetdicom is skipped.
"""
import sys

src_path, out_path = sys.argv[1], sys.argv[2]
src = open(src_path).read()
applied = []


def sub(old, new, what):
    global src
    n = src.count(old)
    if n != 1:
        sys.exit(f"adapt_bench.py: anchor for '{what}' found {n} times in {src_path} (peer script changed?)")
    src = src.replace(old, new)
    applied.append(what)


sub('results = {"label": args.label,',
    'import bench_hooks as HOOKS\nresults = {"label": args.label,',
    "import hooks")
sub('"notes": []}\n',
    '"notes": []}\nHOOKS.init(args, S, BASE, DW, results)\n',
    "init hooks (starts Lumen when BENCH_SERVER=lumen)")
sub('client = DICOMwebClient(url=DW, timeout=600)',
    'client = DICOMwebClient(url=DW, timeout=600, session=HOOKS.client_session())',
    "dicomweb-client sends Lumen's bearer tokens")
sub('server=S.get(BASE + "/system").json())',
    'server=HOOKS.server_info())',
    "server metadata via hooks instead of Orthanc /system")
sub('    if not args.pid:\n        return\n    d = {}\n    with open(f"/proc/{args.pid}/status") as f:',
    '    if not HOOKS.pid():\n        return\n    d = {}\n    with open(f"/proc/{HOOKS.pid()}/status") as f:',
    "rss() follows the current server PID")
sub('def wipe():\n',
    'def wipe():\n    if HOOKS.wipe():\n        return\n',
    "wipe(): Lumen restarted on a fresh data dir")
sub('def count_instances():\n',
    'def count_instances():\n    if not HOOKS.is_orthanc:\n        return HOOKS.count_instances()\n',
    "count_instances(): QIDO for Lumen")
sub('        t0 = time.perf_counter()\n        fn()\n        dt = time.perf_counter() - t0\n',
    '        _smp = HOOKS.Sampler(name)\n        t0 = time.perf_counter()\n        fn()\n'
    '        dt = time.perf_counter() - t0\n        _smp.stop(results)\n',
    "RSS sampler around each timed repetition")
sub('def throughput(name, fn,', 'def _throughput_impl(name, fn,', "throughput wrapper (1/2)")
sub('def latency(name, fn, n=None):', 'def _latency_impl(name, fn, n=None):', "latency wrapper (1/2)")
sub('\ndef run(cmd, **kw):',
    '\ndef throughput(name, *a, **kw):\n    try:\n        return _throughput_impl(name, *a, **kw)\n'
    '    except Exception as e:\n        HOOKS.failed(results, name, e)\n\n\n'
    'def latency(name, *a, **kw):\n    try:\n        return _latency_impl(name, *a, **kw)\n'
    '    except Exception as e:\n        HOOKS.failed(results, name, e)\n\n\n'
    'def run(cmd, **kw):',
    "throughput/latency wrappers (2/2): failures recorded, run continues")

start = "        # Orthanc-native REST rendering (Orthanc IDs)\n"
end = '        latency("Orthanc REST /instances/{id}/preview PNG", native_preview)\n'
i, j = src.find(start), src.find(end)
if i < 0 or j < 0 or src.count(start) != 1 or src.count(end) != 1:
    sys.exit("adapt_bench.py: Orthanc-native rendering block not found (peer script changed?)")
j += len(end)
block = "".join(("    " + line) if line.strip() else line for line in src[i:j].splitlines(True))
src = src[:i] + "        if HOOKS.orthanc_native:\n" + block + src[j:]
applied.append("Orthanc-native REST rendering only for Orthanc")

sub('        latency("WADO-RS /rendered JPEG", lambda i: dw_rendered(i, "image/jpeg"))\n',
    '        latency("WADO-RS /rendered JPEG", lambda i: dw_rendered(i, "image/jpeg"))\n'
    '        latency("WADO-RS frames/1/rendered JPEG", lambda i: dw_frame_rendered(i, "image/jpeg"))\n',
    "extra latency: frames/1/rendered JPEG")

sub('with open(args.out, "w") as f:',
    'results["adaptations"] = __APPLIED__\nHOOKS.finish(results)\nwith open(args.out, "w") as f:',
    "adaptation list + hooks.finish() (stops Lumen) before writing results")
src = src.replace("__APPLIED__", repr(applied))
sub('''    if "dimse-retrieve" not in skip:
        tmpd = tempfile.mkdtemp(prefix="peer-retr-")''',
    '''    if "pynetdicom" not in skip:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as _FIND
        from pydicom.dataset import Dataset as _DS
        _ae_f = AE(ae_title="BENCHSCU"); _ae_f.add_requested_context(_FIND)
        _as_f = _ae_f.associate(args.host, args.dicom_port, ae_title=args.aec); assert _as_f.is_established

        def _find_in_assoc(i):
            q = _DS(); q.QueryRetrieveLevel = "STUDY"; q.PatientID = "PEER0001"
            q.StudyInstanceUID = ""; q.StudyDescription = ""
            n = sum(1 for st, _ in _as_f.send_c_find(q, _FIND) if st and st.Status in (0xFF00, 0xFF01))
            assert n == 1, n

        latency("C-FIND pynetdicom study (in-assoc)", _find_in_assoc)
        _as_f.release()

    if "dimse-retrieve" not in skip:
        tmpd = tempfile.mkdtemp(prefix="peer-retr-")''',
    "extra latency: C-FIND pynetdicom in one association")

compile(src, out_path, "exec")
open(out_path, "w").write(src)
print(f"adapted {src_path} -> {out_path}: {len(applied)} patches")
