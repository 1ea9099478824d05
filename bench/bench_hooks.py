"""Server-specific hooks for the adapted peer bench.py (see adapt_bench.py).

Environment:
  BENCH_SERVER        orthanc (default) | lumen
  BENCH_LUMEN_BIN     path to the lumen binary              (lumen only)
  BENCH_LUMEN_WORK    folder for Lumen's data dirs and logs (lumen only)
  BENCH_SAMPLE_MS     RSS sampling period in ms (default 20)

For Orthanc the server is started by archive.sh and its PID comes from --pid; the hooks
keep bench.py's original behaviour.  For Lumen the hooks own the process: it is started on
a fresh data directory at init and restarted on a fresh one for every wipe() (Lumen has no
delete API; it takes an exclusive lock on its data dir, so a new dir is used every time).
"""
import atexit, os, shutil, subprocess, threading, time, traceback

SERVER = os.environ.get("BENCH_SERVER", "orthanc")
is_orthanc = SERVER == "orthanc"
orthanc_native = is_orthanc
SAMPLE_S = float(os.environ.get("BENCH_SAMPLE_MS", "20")) / 1000

_args = _S = _BASE = _DW = None
_pid = 0
_proc = None
_gen = 0
_data = None
_restarts = []


def init(args, S, BASE, DW, results):
    global _args, _S, _BASE, _DW, _pid
    _args, _S, _BASE, _DW = args, S, BASE, DW
    _pid = args.pid
    results["server_kind"] = SERVER
    results["rss_peak_mib"] = {}
    results["failed"] = {}
    if SERVER == "lumen":
        _start_lumen()
        atexit.register(_stop_lumen)


def pid():
    return _pid


# ------------------------------------------------------------------ Lumen accounts
# Lumen refuses anonymous requests: bench.py's session and its dicomweb-client send the
# bearer token of a technologist for STOW-RS (POST) and of a radiologist for reads, both
# created with `lumen user add` on each fresh data dir and signed in after each start.
_TOKENS = {"store": "", "read": ""}
_USERS = {"store": ("bench-tech", "technologist", "bench-technologist-pw"),
          "read": ("bench-rad", "radiologist", "bench-radiologist-pw")}


try:
    import requests as _rq

    class _LumenAuth(_rq.auth.AuthBase):
        def __call__(self, r):
            if SERVER == "lumen":
                tok = _TOKENS["store" if r.method == "POST" else "read"]
                r.headers["Authorization"] = f"Bearer {tok}"
            return r
except ImportError:  # pragma: no cover
    _LumenAuth = None


def client_session():
    """The requests session for bench.py's dicomweb-client (None: its own)."""
    if is_orthanc:
        return None
    import requests
    s = requests.Session()
    s.auth = _LumenAuth()
    return s


def _add_users(env):
    for user, role, pw in _USERS.values():
        subprocess.run([os.environ["BENCH_LUMEN_BIN"], "user", "add", "--data", _data,
                        "--username", user, "--role", role, "--password-stdin"],
                       input=pw.encode(), check=True, env=env, capture_output=True)


def _login():
    import requests
    for k, (user, _, pw) in _USERS.items():
        r = requests.post(f"{_BASE}/api/auth/login", json={"username": user, "password": pw}, timeout=10)
        r.raise_for_status()
        _TOKENS[k] = r.json()["token"]


# ------------------------------------------------------------------ Lumen process control
def _start_lumen():
    global _proc, _pid, _gen, _data
    work = os.environ["BENCH_LUMEN_WORK"]
    _gen += 1
    _data = os.path.join(work, f"data-{_gen}")
    shutil.rmtree(_data, ignore_errors=True)
    log = open(os.path.join(work, "lumen.log"), "ab")
    log.write(f"\n===== start #{_gen} data={_data} =====\n".encode()); log.flush()
    # Lumen reads LUMEN_* as configuration (unknown keys are errors): pass only LUMEN_LOG.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMEN_") or k == "LUMEN_LOG"}
    cmd = [os.environ["BENCH_LUMEN_BIN"], "serve", "--data", _data,
           "--http", f"{_args.host}:{_args.http_port}", "--dicom", f"{_args.host}:{_args.dicom_port}",
           "--aet", _args.aec]
    # Q/R access: Lumen's defaults (as Orthanc's) allow C-FIND/C-GET/C-MOVE only from declared
    # peers, so bench.py's calling AE titles are declared: BENCHSCU (findscu, getscu; never
    # called back, hence port 1) and BENCHSCP (movescu, which is also the C-MOVE destination:
    # its own store SCP on --move-port).  [access] stays at its defaults.
    cmd += ["--peer", f"BENCHSCU={_args.host}:1",
            "--peer", f"BENCHSCP={_args.host}:{_args.move_port}"]
    _add_users(env)
    t0 = time.perf_counter()
    _proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
    _pid = _proc.pid
    import requests
    while True:
        if _proc.poll() is not None:
            raise RuntimeError(f"lumen exited rc={_proc.returncode}; see {work}/lumen.log")
        try:
            if requests.get(f"{_BASE}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.perf_counter() - t0 > 60:
            raise RuntimeError("lumen did not answer /health within 60 s")
        time.sleep(0.05)
    _restarts.append(round(time.perf_counter() - t0, 3))
    _login()
    _S.auth = _LumenAuth()


def _stop_lumen():
    global _proc
    if _proc is None:
        return
    if _proc.poll() is None:
        _proc.terminate()
        try:
            _proc.wait(30)
        except subprocess.TimeoutExpired:
            _proc.kill(); _proc.wait()
    _proc = None
    if _data:
        shutil.rmtree(_data, ignore_errors=True)


def wipe():
    """True when handled here (Lumen: restart on an empty data dir); False: bench.py's own."""
    if is_orthanc:
        return False
    _stop_lumen()
    _S.close()          # drop keep-alive connections to the old process
    _start_lumen()
    return True


def count_instances():
    r = _S.get(_DW + "/instances", headers={"Accept": "application/dicom+json"})
    if r.status_code == 204:
        return 0
    r.raise_for_status()
    return len(r.json())


def server_info():
    if is_orthanc:
        return _S.get(_BASE + "/system").json()
    v = subprocess.run([os.environ["BENCH_LUMEN_BIN"], "--version"], capture_output=True, text=True).stdout.strip()
    return {"Name": "Lumen", "Version": v, "binary": os.environ["BENCH_LUMEN_BIN"],
            "commit": os.environ.get("BENCH_LUMEN_COMMIT", "")}


# ------------------------------------------------------------------ RSS sampling
def _read_status(p):
    d = {}
    try:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    k, v = line.split(":")
                    d[k] = int(v.split()[0])
    except OSError:
        pass
    return d


class Sampler:
    """Polls the server's VmRSS during one timed repetition."""

    def __init__(self, name):
        self.name, self.pid, self.peak, self.n = name, _pid, 0, 0
        self._stop = threading.Event()
        if self.pid:
            self._t = threading.Thread(target=self._loop, daemon=True)
            self._t.start()

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _read_status(self.pid).get("VmRSS", 0)); self.n += 1
            self._stop.wait(SAMPLE_S)

    def stop(self, results):
        if not self.pid:
            return
        self._stop.set(); self._t.join()
        d = _read_status(self.pid)
        self.peak = max(self.peak, d.get("VmRSS", 0))
        results["rss_peak_mib"].setdefault(self.name, []).append(
            dict(rss_max=round(self.peak / 1024, 1), hwm=round(d.get("VmHWM", 0) / 1024, 1), samples=self.n))


def failed(results, name, e):
    msg = f"{type(e).__name__}: {e}".strip()
    results["failed"][name] = msg[:500]
    print(f"  {name:38s} FAILED ({msg.splitlines()[0][:150]})", flush=True)


def finish(results):
    results["lumen_restarts_s"] = _restarts
    _stop_lumen()
