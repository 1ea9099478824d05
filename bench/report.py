#!/usr/bin/env python3
"""Comparison table Orthanc vs Lumen from the two results JSON files of one archive.sh run.

Usage: report.py ORTHANC_JSON LUMEN_JSON OUT_MD [RUNINFO_TXT [ORTHANC_NAGLE_JSON LUMEN_NAGLE_JSON]]
Prints the Markdown table and writes it to OUT_MD.  Values are medians over the reps
(throughput: median time -> inst/s; latency: median of LAT_N requests); peak RSS is the
largest VmRSS sampled every 20 ms while a STOW-RS request ran (max over all STOW reps).
The optional Nagle JSONs (DIMSE section with TCP_NODELAY unset: Debian's defaults for Orthanc
and the DCMTK clients) give a second table.
"""
import json, os, statistics, sys

o = json.load(open(sys.argv[1]))
l = json.load(open(sys.argv[2]))
out_md = sys.argv[3]
runinfo = open(sys.argv[4]).read().strip() if len(sys.argv) > 4 else ""
nagle = [json.load(open(p)) if os.path.exists(p) else None for p in sys.argv[5:7]]
on, ln = (nagle + [None, None])[:2]

STOW = ["STOW-RS dicomweb-client (1 request)", "STOW-RS raw requests (1 request)", "STOW-RS raw requests (10x30 inst)"]
# (kind, bench.py name, label, op, target ratio Lumen/Orthanc or None)
#   tp  = ingest throughput, shown as inst/s (higher is better)
#   tpt = transfer time, shown in s (lower is better)
#   lat = latency median in ms (lower is better)
ROWS = [
    ("tp", "C-STORE storescu (1 assoc)", "C-STORE storescu, 1 association", ">=", 2.0),
    ("tp", "C-STORE storescu (4 assoc parallel)", "C-STORE storescu, 4 associations", ">=", 2.0),
    ("tp", "C-STORE pynetdicom (1 assoc)", "C-STORE pynetdicom, 1 association (client-bound)", None, None),
    ("tp", STOW[1], "STOW-RS, 1 request of 300 (raw)", ">=", 2.0),
    ("tp", STOW[2], "STOW-RS, 10 requests of 30 (raw)", ">=", 2.0),
    ("tp", STOW[0], "STOW-RS, dicomweb-client (1 request)", ">=", 2.0),
    ("rss", None, "Peak RSS during STOW-RS (max VmRSS, all STOW reps)", "<=", 0.25),
    ("rssv", STOW[1], "  peak RSS, STOW 1x300 raw (median of reps)", None, None),
    ("rssv", STOW[2], "  peak RSS, STOW 10x30 raw (median of reps)", None, None),
    ("rssv", STOW[0], "  peak RSS, STOW dicomweb-client (median of reps)", None, None),
    ("rssv", "C-STORE storescu (1 assoc)", "  peak RSS, C-STORE 1 assoc (median of reps)", None, None),
    ("rssv", "C-STORE storescu (4 assoc parallel)", "  peak RSS, C-STORE 4 assoc (median of reps)", None, None),
    ("tpt", "WADO-RS series raw (stream bytes)", "WADO-RS series, raw stream (300 inst)", "<=", 1.2),
    ("tpt", "WADO-RS series dicomweb-client (parse)", "WADO-RS series, dicomweb-client (parse)", "<=", 1.2),
    ("lat", "WADO-RS /rendered JPEG", "Rendered JPEG, /instances/{sop}/rendered", "<=", 1.0),
    ("lat", "WADO-RS frames/1/rendered JPEG", "Rendered JPEG, frames/1/rendered", "<=", 1.0),
    ("lat", "WADO-RS /rendered PNG (distinct inst)", "Rendered PNG, /instances/{sop}/rendered", None, None),
    ("lat", "WADO-RS frames/1/rendered PNG", "Rendered PNG, frames/1/rendered", None, None),
    ("lat", "dicomweb-client rendered PNG", "Rendered PNG, dicomweb-client", None, None),
    ("lat", "QIDO-RS /studies (raw)", "QIDO-RS /studies", None, None),
    ("lat", "QIDO-RS /studies?PatientID= (raw)", "QIDO-RS /studies?PatientID=", None, None),
    ("lat", "QIDO-RS studies dicomweb-client", "QIDO-RS studies, dicomweb-client", None, None),
    ("lat", "QIDO-RS series of study (raw)", "QIDO-RS series of study", None, None),
    ("lat", "QIDO-RS 300 instances of series (raw)", "QIDO-RS 300 instances of series", None, None),
    ("lat", "WADO-RS series /metadata (raw)", "WADO-RS series /metadata", None, None),
    ("lat", "WADO-RS study /metadata dicomweb-client", "WADO-RS study /metadata, dicomweb-client", None, None),
    ("lat", "WADO-RS frames/1 (raw, distinct inst)", "WADO-RS frames/1 (octet-stream)", None, None),
    ("lat", "C-ECHO echoscu (process incl.)", "C-ECHO echoscu (incl. process start)", None, None),
    ("lat", "C-ECHO pynetdicom (in-assoc)", "C-ECHO pynetdicom (in association)", None, None),
    ("lat", "C-FIND findscu study (process incl.)", "C-FIND findscu study (incl. process start)", "<=", 1.0),
    ("lat", "C-FIND pynetdicom study (in-assoc)", "C-FIND pynetdicom study (in association)", "<=", 1.0),
    ("tpt", "C-GET getscu series", "C-GET getscu series (300 inst, to files)", "<=", 1.0),
    ("tpt", "C-MOVE movescu series (to self)", "C-MOVE movescu series to BENCHSCP (300 inst)", "<=", 1.0),
]
# Debian's defaults (Nagle on): Lumen (which sets TCP_NODELAY on its own sockets) against
# Orthanc as shipped, both driven by DCMTK clients as shipped.  "far better" = ratio <= 0.5.
NAGLE_ROWS = [
    ("tp", "C-STORE storescu (1 assoc)", "C-STORE storescu, 1 association", None, None),
    ("tp", "C-STORE storescu (4 assoc parallel)", "C-STORE storescu, 4 associations", None, None),
    ("lat", "C-ECHO echoscu (process incl.)", "C-ECHO echoscu (incl. process start)", None, None),
    ("lat", "C-FIND findscu study (process incl.)", "C-FIND findscu study (incl. process start)", "<=", 0.5),
    ("tpt", "C-GET getscu series", "C-GET getscu series (300 inst, to files)", "<=", 0.5),
    ("tpt", "C-MOVE movescu series (to self)", "C-MOVE movescu series to BENCHSCP (300 inst)", "<=", 0.5),
]


def get(r, kind, name):
    """(display string, number used for the ratio) or (reason, None)."""
    if name and name in r.get("failed", {}):
        return "n/a (" + r["failed"][name].splitlines()[0][:60] + ")", None
    if kind == "tp":
        v = r["throughput"].get(name)
        if not v:
            return "—", None
        return f"{v['inst_per_s']:.1f} inst/s ({v['median_s']:.2f} s)", v["inst_per_s"]
    if kind == "tpt":
        v = r["throughput"].get(name)
        if not v:
            return "—", None
        return f"{v['median_s']:.3f} s ({v['MB_per_s']:.0f} MB/s)", v["median_s"]
    if kind == "lat":
        v = r["latency_ms"].get(name)
        if not v:
            return "—", None
        return f"{v['median']:.2f} ms (p95 {v['p95']:.1f})", v["median"]
    if kind == "rss":
        peaks = [p["rss_max"] for n in STOW for p in r.get("rss_peak_mib", {}).get(n, [])]
        hwm = [p["hwm"] for n in STOW for p in r.get("rss_peak_mib", {}).get(n, [])]
        if not peaks:
            return "—", None
        return f"{max(peaks):.0f} MiB (HWM {max(hwm):.0f})", max(peaks)
    if kind == "rssv":
        ps = [p["rss_max"] for p in r.get("rss_peak_mib", {}).get(name, [])]
        if not ps:
            return "—", None
        return f"{statistics.median(ps):.0f} MiB", statistics.median(ps)
    raise ValueError(kind)


verdicts = []


def compare(a, b, rows, head_a="Orthanc", head_b="Lumen", tag=""):
    lines = [f"| metric | {head_a} | {head_b} | ratio L/O | target | met? |", "|---|---|---|---|---|---|"]
    for kind, name, label, op, tgt in rows:
        so, vo = get(a, kind, name)
        sl, vl = get(b, kind, name)
        ratio = vl / vo if (vo and vl is not None) else None
        rs = f"{ratio:.2f}" if ratio is not None else "—"
        if op:
            ts = f"{op} {tgt:g}"
            met = "—" if ratio is None else ("yes" if (ratio >= tgt if op == ">=" else ratio <= tgt) else "**NO**")
            verdicts.append((label + tag, met))
        else:
            ts, met = "info", ""
        lines.append(f"| {label} | {so} | {sl} | {rs} | {ts} | {met} |")
    return "\n".join(lines)


table = compare(o, l, ROWS)
nagle_table = None
if on and ln:
    nagle_table = compare(on, ln, NAGLE_ROWS, "Orthanc (Nagle on)", "Lumen (clients Nagle on)", " (Nagle on)")

mo, ml = o["meta"], l["meta"]
notes = [
    f"Series: {mo['files']} CT slices 512x512 int16, {mo['total_bytes'] / 1e6:.1f} MB (gen_series.py); "
    f"reps={mo['reps']} (throughput = median time of the reps), latency samples={mo['lat_n']} (median, p95).",
    "Ratio = Lumen / Orthanc of the number shown (inst/s for ingest: higher is better; "
    "seconds/ms/MiB otherwise: lower is better).",
    "Both servers were measured in the same run, same network namespace, same client processes "
    "(peer bench.py, TCP_NODELAY=1 for DCMTK and pynetdicom; Orthanc started with TCP_NODELAY=1).",
    "Orthanc is wiped between reps through its REST API; Lumen has no delete API, so it is restarted "
    "on a fresh data dir between reps (untimed); its first request after a restart is cold.",
    "Peak RSS: VmRSS of the server process sampled every 20 ms during each timed STOW-RS rep. "
    "HWM = VmHWM at the end of the rep (Orthanc: since its start, so it includes the C-STORE phase; "
    "Lumen: since its restart just before that rep).",
]
if l.get("lumen_restarts_s"):
    notes.append(f"Lumen restarts (fresh data dir to /health 200): median "
                 f"{statistics.median(l['lumen_restarts_s']):.2f} s over {len(l['lumen_restarts_s'])}.")
fails = {**{f"Orthanc: {k}": v for k, v in o.get("failed", {}).items()},
         **{f"Lumen: {k}": v for k, v in l.get("failed", {}).items()}}
md = ["# Archive benchmark: Lumen vs Orthanc", ""]
if runinfo:
    md += ["```", runinfo, "```", ""]
md += [table, ""] + [f"- {n}" for n in notes]
if nagle_table:
    md += ["", f"### DIMSE with Debian's defaults (TCP_NODELAY unset; reps={on['meta']['reps']})", "",
           "Orthanc 1.10 and DCMTK 3.6.7 as shipped leave Nagle's algorithm on; Lumen sets TCP_NODELAY on its "
           "own sockets, so only the clients' side of its connections has Nagle on. Target \"far better\" = "
           "ratio <= 0.5.", "", nagle_table]
    for lab, r in (("Orthanc (Nagle on)", on), ("Lumen (clients Nagle on)", ln)):
        for k, v in r.get("failed", {}).items():
            fails[f"{lab}: {k}"] = v
if fails:
    md += ["", "Measurements that did not run:"] + [f"- {k}: `{v.splitlines()[0][:200]}`" for k, v in fails.items()]
md += ["", "Targets: " + ", ".join(f"{lab.strip()}: {m}" for lab, m in verdicts)]
text = "\n".join(md) + "\n"
open(out_md, "w").write(text)
print(text)
