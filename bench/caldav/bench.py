#!/usr/bin/env python3
"""CalDAV sync benchmark: calsync and vdirsyncer against the same Radicale
calendar, in one run. Driven by bench.sh, which installs and builds; see
docs/BENCHMARKS.md, "CalDAV sync".

    python3 bench.py --calsync BIN --vdirsyncer BIN [--resources 5000]
                     [--repeat 3] [--vdirsyncer-first] [--out FILE]

Requests are counted from Radicale's own request log (logging level info:
one "METHOD response status for PATH ... N bytes: STATUS" line per answered
request, 401 challenges included), between a byte offset taken before a
round and one taken after it. Wall time, CPU and peak RSS of a round are
those of the whole client process under /usr/bin/time -v (for
`calsync serve` rounds: wall from the POST to the finished run, RSS from
/proc/PID/status).
"""

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen  # noqa: E402

USER, PASSWORD = "bench", "bench-secret"
CALENDAR = "bench"
KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # fixed: the data is thrown away
RESPONSE = re.compile(r"\] (?P<method>[A-Z]+) response status for '(?P<path>[^']*)'(?P<rest>.*?): (?P<status>\d{3})\b")
SECONDS = re.compile(r" in (\d+(?:\.\d+)?) seconds")
BYTES = re.compile(r" (\d+) bytes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(msg, flush=True)


class Radicale:
    """Radicale on a free port, own storage and htpasswd, request log at info."""

    def __init__(self, root: Path):
        self.root = root
        (root / "storage").mkdir(parents=True)
        (root / "users").write_text(f"{USER}:{PASSWORD}\n")
        self.log_path = root / "radicale.log"
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["python3", "-m", "radicale", "--config", "",
             "--server-hosts", f"127.0.0.1:{self.port}",
             "--auth-type", "htpasswd", "--auth-htpasswd-encryption", "plain",
             "--auth-htpasswd-filename", str(root / "users"), "--auth-delay", "0",
             "--storage-filesystem-folder", str(root / "storage"),
             "--logging-level", "info"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("Radicale exited:\n" + self.log_path.read_text()[-2000:])
            try:
                if self.request("OPTIONS", "/", auth=False)[0] < 500:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("Radicale did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def request(self, method, path, body=b"", headers=None, auth=True, timeout=600):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data

    def offset(self) -> int:
        time.sleep(0.3)  # let the last answer's log line land
        return self.log_path.stat().st_size

    def count(self, start: int, end: int) -> dict:
        with open(self.log_path, "rb") as f:
            f.seek(start)
            text = f.read(end - start).decode("utf-8", "replace")
        methods: dict[str, int] = {}
        statuses: dict[str, int] = {}
        total = bytes_out = 0
        server_secs = 0.0
        for m in RESPONSE.finditer(text):
            total += 1
            methods[m["method"]] = methods.get(m["method"], 0) + 1
            statuses[m["status"]] = statuses.get(m["status"], 0) + 1
            b = BYTES.search(m["rest"])
            bytes_out += int(b.group(1)) if b else 0
            t = SECONDS.search(m["rest"])
            server_secs += float(t.group(1)) if t else 0.0
        return {"requests": total, "methods": methods, "statuses": statuses,
                "bytes": bytes_out, "server_s": round(server_secs, 3)}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def timed(cmd, env=None, stdin_text=None, cwd=None) -> dict:
    """Runs cmd under /usr/bin/time -v: wall, cpu, peak RSS, output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as tf:
        time_file = tf.name
    proc = subprocess.run(
        ["/usr/bin/time", "-v", "-o", time_file, *cmd], env=env, cwd=cwd,
        input=stdin_text, capture_output=True, text=True,
    )
    report = Path(time_file).read_text()
    os.unlink(time_file)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{report}")

    def field(name):
        m = re.search(rf"{re.escape(name)}.*?: (.+)", report)
        return m.group(1).strip()

    parts = [float(p) for p in field("Elapsed (wall clock) time").split(":")]
    wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(float(field("User time")) + float(field("System time")), 3),
        "rss_mib": round(int(field("Maximum resident set size")) / 1024, 1),
        "stdout": proc.stdout, "stderr": proc.stderr,
    }


class Calsync:
    def __init__(self, binary: Path, root: Path, radicale: Radicale):
        self.binary = str(binary)
        self.data = root / "calsync-data"
        self.data.mkdir(parents=True)
        self.radicale = radicale
        self.env = {
            **os.environ,
            "CALSYNC_DATA_DIR": str(self.data),
            "CALSYNC_ENCRYPTION_KEY": KEY,
            "CALSYNC_PUBLIC_URL": "http://localhost:8000",
            "CALSYNC_ALLOW_PRIVATE_ADDRESSES": "true",
            "CALSYNC_SYNC_INTERVAL": "24h",
            "CALSYNC_LISTEN": "127.0.0.1:0",
            "NO_COLOR": "1",
        }
        self.serve_proc = None
        self.base = None
        self.token = None

    def cli(self, *args, stdin_text=None) -> str:
        out = subprocess.run([self.binary, *args], env=self.env, input=stdin_text,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"calsync {' '.join(args)} failed:\n{out.stderr}")
        return out.stdout

    def setup(self) -> None:
        self.cli("user", "add", USER, "--password-stdin", stdin_text=PASSWORD + "\n")
        self.token = self.cli("token", "create", USER).strip().splitlines()[-1]

    def serve(self) -> None:
        self.serve_proc = subprocess.Popen([self.binary, "serve"], env=self.env,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True)
        found = threading.Event()
        self.serve_log = []

        def reader():
            for line in self.serve_proc.stderr:
                line = re.sub(r"\x1b\[[0-9;]*m", "", line)
                self.serve_log.append(line)
                m = re.search(r"listening on (http://\S+)", line)
                if m and not found.is_set():
                    self.base = m.group(1).rstrip("/")
                    found.set()

        threading.Thread(target=reader, daemon=True).start()
        if not found.wait(60):
            self.serve_proc.kill()
            raise SystemExit("calsync serve did not start:\n" + "".join(self.serve_log))

    def stop_serve(self) -> None:
        self.serve_proc.send_signal(signal.SIGTERM)
        try:
            self.serve_proc.wait(20)
        except subprocess.TimeoutExpired:
            self.serve_proc.kill()
            self.serve_proc.wait()

    def status(self) -> dict:
        out = {}
        for line in Path(f"/proc/{self.serve_proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = round(int(v.split()[0]) / 1024, 1)
        return out

    def api(self, method, path, body=None):
        host, port = self.base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=600)
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        if resp.status >= 300:
            raise SystemExit(f"{method} {path}: {resp.status} {text[:500]!r}")
        return json.loads(text) if text else None

    def latest_run(self, connection_id: int):
        for c in self.api("GET", "/api/calendar/connections/"):
            if c["id"] == connection_id:
                finished = [r for r in c["recent_runs"] if r["finished_at"]]
                return finished[0]["started_at"] if finished else None
        return None

    def wait_run(self, connection_id: int, previous, timeout=900) -> dict:
        """Polls the connections list until the connection's latest finished
        run is not `previous` (its started_at); returns that run."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in self.api("GET", "/api/calendar/connections/"):
                if c["id"] != connection_id:
                    continue
                finished = [r for r in c["recent_runs"] if r["finished_at"]]
                if finished and finished[0]["started_at"] != previous:
                    run = finished[0]
                    if run["outcome"] != "ok":
                        raise SystemExit(f"sync failed: {run}")
                    return {"run": run, "status": c["status"]}
            time.sleep(0.02)
        raise SystemExit("timed out waiting for the sync")

    def events(self) -> dict:
        db = sqlite3.connect(f"file:{self.data / 'calsync.db'}?mode=ro", uri=True)
        total, masters = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE recurring_event_id IS NULL) FROM events").fetchone()
        occurrences = db.execute("SELECT count(*) FROM occurrences").fetchone()[0]
        db.close()
        return {"events": total, "resources": masters, "occurrences": occurrences}


def sync_line(stderr: str) -> str:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in stderr.splitlines() if "sync finished" in l]
    return lines[-1].strip() if lines else ""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calsync", required=True, type=Path)
    p.add_argument("--vdirsyncer", required=True)
    p.add_argument("--resources", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3, help="no-change rounds per tool (median reported)")
    p.add_argument("--vdirsyncer-first", action="store_true")
    p.add_argument("--out", type=Path)
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="calsync-caldav-bench-"))
    rows: list[dict] = []
    raw: list[str] = []

    def note(msg):
        log(msg)
        raw.append(msg)

    def row(tool, round_, m, counted, extra=""):
        r = {"tool": tool, "round": round_, "requests": counted["requests"], "wall_s": m["wall_s"],
             "cpu_s": m.get("cpu_s"), "rss_mib": m["rss_mib"], "methods": counted["methods"],
             "statuses": counted["statuses"], "bytes": counted["bytes"], "radicale_s": counted["server_s"],
             "extra": extra}
        rows.append(r)
        note(f"  {tool:10} {round_:24} requests={r['requests']} {counted['methods']} statuses={counted['statuses']} "
             f"bytes={counted['bytes']} radicale_s={counted['server_s']} wall_s={m['wall_s']} cpu_s={m.get('cpu_s')} "
             f"rss_mib={m['rss_mib']} {extra}")

    note(f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; cpu: {os.cpu_count()} cores; "
         f"load at start: {open('/proc/loadavg').read().split()[:3]}")
    radicale = Radicale(root / "radicale")
    calsync = Calsync(args.calsync, root, radicale)
    procs = []
    try:
        ver = subprocess.run([args.vdirsyncer, "--version"], capture_output=True, text=True).stdout.strip()
        rver = subprocess.run(["python3", "-c", "import radicale; print(radicale.VERSION)"], capture_output=True, text=True).stdout.strip()
        cver = subprocess.run([str(args.calsync), "--version"], capture_output=True, text=True).stdout.strip()
        note(f"versions: {cver}; {ver}; radicale {rver}; Radicale on {radicale.base_url}; temp {root}")

        # calsync connects first, to the still empty account: discovery and
        # a first sync with no calendar. The calendar made afterwards is then
        # synced from scratch by a `calsync sync` process of its own.
        calsync.setup()
        calsync.serve()
        o = radicale.offset()
        t0 = time.monotonic()
        conn = calsync.api("POST", "/api/calendar/caldav/connect/",
                           {"server_url": radicale.base_url, "username": USER, "password": PASSWORD})
        done = calsync.wait_run(conn["id"], None)
        wall = time.monotonic() - t0
        c = radicale.count(o, radicale.offset())
        note(f"calsync connect (empty account, through the API): {wall:.3f} s, {c['requests']} requests {c['methods']}, "
             f"run {done['run']}")
        calsync.stop_serve()

        # Seed.
        ics_path = root / "calendar.ics"
        text, vevents = gen.generate(args.resources, dt.date.today() - dt.timedelta(days=dt.date.today().weekday()))
        ics_path.write_text(text, newline="")
        single, weekly, allday = gen.mix(args.resources)
        mk = ('<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
              '<D:set><D:prop><D:displayname>Bench</D:displayname><C:supported-calendar-component-set>'
              '<C:comp name="VEVENT"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>')
        status, _ = radicale.request("MKCALENDAR", f"/{USER}/{CALENDAR}/", mk.encode(),
                                     {"Content-Type": "application/xml; charset=utf-8"})
        assert status == 201, status
        t0 = time.monotonic()
        status, _ = radicale.request("PUT", f"/{USER}/{CALENDAR}/", text.encode(),
                                     {"Content-Type": "text/calendar; charset=utf-8"})
        assert status in (201, 204), status
        # Warm-up: a listing, so that neither tool meets a cold cache.
        status, body = radicale.request("PROPFIND", f"/{USER}/{CALENDAR}/",
                                        b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
                                        {"Depth": "1", "Content-Type": "application/xml"})
        members = len(re.findall(rb"<(?:\w+:)?getetag>", body))
        note(f"seeded {args.resources} resources ({single} single, {weekly} weekly series, half with overrides, "
             f"{allday} all-day; {vevents} VEVENTs; {len(text) / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s; "
             f"PROPFIND lists {members} members")

        def run_calsync():
            o = radicale.offset()
            m = timed([str(calsync.binary), "sync", "--user", USER], env=calsync.env)
            c = radicale.count(o, radicale.offset())
            ev = calsync.events()
            line = sync_line(m["stderr"])
            rq = re.search(r"requests=(\d+)", line)
            warnings = [re.sub(r"\x1b\[[0-9;]*m", "", l).strip() for l in m["stderr"].splitlines() if "WARN" in l or "retry" in l.lower()]
            if warnings:
                note("  calsync warnings: " + " | ".join(warnings)[:2000])
            return m, c, ev, (rq.group(1) if rq else "?"), line

        def calsync_rounds():
            m, c, ev, own, line = run_calsync()
            if ev["resources"] != args.resources or ev["events"] != vevents:
                raise SystemExit(f"calsync stored {ev}, expected {args.resources} resources / {vevents} events\n{m['stderr'][-3000:]}")
            row("calsync", "initial (CLI)", m, c, f"own count {own}; stored {ev}")
            for i in range(args.repeat):
                m, c, ev, own, line = run_calsync()
                row("calsync", f"no change #{i + 1} (CLI)", m, c, f"own count {own}")

        vdir = root / "vdirsyncer"
        (vdir / "cal" / CALENDAR).mkdir(parents=True)
        config = vdir / "config"
        config.write_text(f"""[general]
status_path = "{vdir}/status/"

[pair bench]
a = "bench_remote"
b = "bench_local"
collections = ["from a"]

[storage bench_remote]
type = "caldav"
url = "{radicale.base_url}"
username = "{USER}"
password = "{PASSWORD}"

[storage bench_local]
type = "filesystem"
path = "{vdir}/cal/"
fileext = ".ics"
""")
        venv = {**os.environ, "VDIRSYNCER_CONFIG": str(config)}

        def run_vdir(*cmd, stdin_text=None):
            o = radicale.offset()
            m = timed([args.vdirsyncer, *cmd], env=venv, stdin_text=stdin_text)
            return m, radicale.count(o, radicale.offset())

        def vdirsyncer_rounds():
            m, c = run_vdir("discover", stdin_text="y\n" * 10)
            row("vdirsyncer", "discover", m, c)
            m, c = run_vdir("sync")
            files = len(list((vdir / "cal" / CALENDAR).glob("*.ics")))
            if files != args.resources:
                raise SystemExit(f"vdirsyncer wrote {files} files, expected {args.resources}\n{m['stderr'][-3000:]}")
            row("vdirsyncer", "initial", m, c, f"{files} files")
            for i in range(args.repeat):
                m, c = run_vdir("sync")
                row("vdirsyncer", f"no change #{i + 1}", m, c)

        order = [vdirsyncer_rounds, calsync_rounds] if args.vdirsyncer_first else [calsync_rounds, vdirsyncer_rounds]
        for f in order:
            note(f"load before {f.__name__}: {open('/proc/loadavg').read().split()[:3]}")
            f()

        # The same no-change sync through the running server (worker), as
        # the UI's "Sync now" does it.
        calsync.serve()
        time.sleep(1)
        for i in range(args.repeat):
            before = calsync.latest_run(conn["id"])
            o = radicale.offset()
            t0 = time.monotonic()
            calsync.api("POST", "/api/calendar/sync/", {"connection_id": conn["id"]})
            done = calsync.wait_run(conn["id"], before)
            wall = time.monotonic() - t0
            c = radicale.count(o, radicale.offset())
            st = calsync.status()
            row("calsync", f"no change #{i + 1} (API)", {"wall_s": round(wall, 3), "rss_mib": st["VmHWM"]}, c,
                f"own count {done['run']['requests']}; serve VmRSS {st['VmRSS']} MiB")
        calsync.stop_serve()
        note(f"load at end: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        if calsync.serve_proc and calsync.serve_proc.poll() is None:
            calsync.serve_proc.kill()
        radicale.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)])

    # Table: initial rows as measured, no-change rows as the median of the repeats.
    def med(rs, key):
        vals = [r[key] for r in rs if r[key] is not None]
        return statistics.median(vals) if vals else None

    table = ["| tool | round | requests to Radicale | bytes from Radicale | Radicale busy s | wall s | CPU s | peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple, list] = {}
    for r in rows:
        key = (r["tool"], re.sub(r" #\d+", "", r["round"]))
        groups.setdefault(key, []).append(r)
    for (tool, round_), rs in groups.items():
        n = f" (median of {len(rs)})" if len(rs) > 1 else ""
        reqs = sorted({r["requests"] for r in rs})
        methods = ", ".join(f"{v} {k}" for k, v in sorted(rs[0]["methods"].items()))
        cpu = med(rs, "cpu_s")
        table.append(f"| {tool} | {round_}{n} | {'/'.join(map(str, reqs))} ({methods}) | {med(rs, 'bytes') / 1024:,.0f} KiB | "
                     f"{med(rs, 'radicale_s'):.2f} | {med(rs, 'wall_s'):.3f} | "
                     f"{'' if cpu is None else f'{cpu:.2f}'} | {med(rs, 'rss_mib'):.1f} |")
    out = "\n".join(table)
    log("\n" + out)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write("\n".join(raw) + "\n\n" + out + "\n\n")
        log(f"\nraw numbers appended to {args.out}")


if __name__ == "__main__":
    main()
