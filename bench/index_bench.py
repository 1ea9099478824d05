#!/usr/bin/env python3
"""Index benchmark client (bench/index.sh): QIDO-RS, worklist and C-FIND latencies against
one server holding a generated archive (crates/store/examples/tiny_archive.rs).

Each query is sent N times over one keep-alive HTTP session (C-FIND: within one
association), with the studies picked at random from the archive's range so that no
answer is a cache hit of the previous one; prints and writes p50/p99 in ms per query.
Every answer is checked (status 200 and the expected number of matches), so a fast
wrong answer cannot pass as a fast one.
"""
import argparse
import json
import os
import random
import statistics
import sys
import time

import requests

ARGS = None
SESSION = None


def pct(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def study_uid(n):
    return f"1.2.826.0.1.3680043.10.1043.1.{n}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="DICOMweb root, e.g. http://127.0.0.1:8080/dicom-web")
    ap.add_argument("--studies", type=int, required=True, help="studies in the archive")
    ap.add_argument("--per-study", type=int, default=10)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--worklist", help="worklist URL (Lumen only)")
    ap.add_argument("--dicom", help="host:port:AET for C-FIND")
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lenient", action="store_true",
                    help="a wrong answer is recorded and the next query runs (for the peer)")
    a = ap.parse_args()
    global ARGS, SESSION
    ARGS = a
    rnd = random.Random(1043)
    SESSION = requests.Session()
    SESSION.headers["Accept"] = "application/dicom+json"
    # Lumen's bearer token (index.sh signs in first); Orthanc needs none.
    if os.environ.get("LUMEN_BENCH_TOKEN"):
        SESSION.headers["Authorization"] = f"Bearer {os.environ['LUMEN_BENCH_TOKEN']}"

    def pick():
        return rnd.randrange(a.studies)

    queries = {
        "PatientID": lambda: (f"{a.base}/studies?PatientID=SCALE{pick():07d}", 1),
        # The ten patients SCALE^P00xxxx0..9 (the last digit wild; Orthanc 1.10 finds
        # nothing for a pattern with '^' in it, which the table shows as a wrong answer).
        "PatientName wildcard": lambda: (
            f"{a.base}/studies?PatientName=SCALE^P{pick() // 10:06d}*", min(10, a.studies)),
        "StudyDate range, limit 25": lambda: (
            (lambda y: f"{a.base}/studies?StudyDate={y}0101-{y}1231&limit=25")(2000 + pick() % 25),
            min(25, a.studies // 25)),
        "page (limit 25, offset 50)": lambda: (f"{a.base}/studies?limit=25&offset=50", 25),
        "series of a study": lambda: (f"{a.base}/studies/{study_uid(pick())}/series", 1),
        "instances of a study": lambda: (f"{a.base}/studies/{study_uid(pick())}/instances", a.per_study),
    }
    if a.worklist:
        queries["worklist first page"] = lambda: (a.worklist, None)
    results = {}

    class Wrong(Exception):
        pass

    def wrong(msg):
        if a.lenient:
            raise Wrong(msg)
        sys.exit(msg)

    for name, make in queries.items():
        lat = []
        try:
            run(name, make, lat, wrong)
        except Wrong as e:
            results[name] = {"error": str(e)}
            print(f"{a.label:>14} | {name:<28} WRONG ANSWER: {e}", flush=True)
            continue
        results[name] = {"p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99), "n": len(lat)}
        print(f"{a.label:>14} | {name:<28} p50 {results[name]['p50_ms']:7.2f} ms  p99 {results[name]['p99_ms']:7.2f} ms", flush=True)
    dicom_find(a, pick, results)
    with open(a.out, "w") as f:
        json.dump({"label": a.label, "studies": a.studies, "per_study": a.per_study, "results": results}, f, indent=1)


def run(name, make, lat, wrong):
    """Sends one query N times (after 5 warm-ups), checking each answer."""
    for i in range(ARGS.n + 5):
        url, expect = make()
        t = time.perf_counter()
        r = SESSION.get(url, timeout=60)
        dt = (time.perf_counter() - t) * 1000
        if r.status_code != 200:
            wrong(f"{ARGS.label}: {name}: HTTP {r.status_code} for {url}: {r.text[:200]}")
        body = r.json()
        got = len(body["items"]) if isinstance(body, dict) and "items" in body else len(body)
        if expect is not None and got != expect:
            wrong(f"{ARGS.label}: {name}: {got} results, expected {expect} ({url})")
        if got == 0:
            wrong(f"{ARGS.label}: {name}: no results ({url})")
        if i >= 5:  # warm-up
            lat.append(dt)


def dicom_find(a, pick, results):
    if a.dicom:
        from pydicom.dataset import Dataset
        from pynetdicom import AE
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind
        host, port, aet = a.dicom.split(":")
        ae = AE(ae_title="BENCHSCU")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate(host, int(port), ae_title=aet)
        if not assoc.is_established:
            sys.exit(f"{a.label}: C-FIND association refused")
        lat = []
        for i in range(a.n + 5):
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.PatientID = f"SCALE{pick():07d}"
            ds.StudyInstanceUID = ""
            ds.PatientName = ""
            ds.StudyDate = ""
            t = time.perf_counter()
            matches = 0
            for status, ident in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind):
                if status and status.Status in (0xFF00, 0xFF01):
                    matches += 1
            dt = (time.perf_counter() - t) * 1000
            if matches != 1:
                sys.exit(f"{a.label}: C-FIND found {matches} studies, expected 1")
            if i >= 5:
                lat.append(dt)
        assoc.release()
        results["C-FIND study level"] = {"p50_ms": statistics.median(lat), "p99_ms": pct(lat, 99), "n": len(lat)}
        print(f"{a.label:>14} | {'C-FIND study level':<28} p50 {statistics.median(lat):7.2f} ms  p99 {pct(lat, 99):7.2f} ms", flush=True)


if __name__ == "__main__":
    main()
