"""Soak: mixed use with faults injected, against a real `policyqa serve` on folders of its own.

    python bench/soak.py --minutes 60          # the target run: prints the summary, writes it to bench/RESULTS.md
    python bench/soak.py --minutes 2 --no-results   # what CI runs (tests/test_soak.py)

For the set time, readers search (GET and POST, filters, grouping) and open 查看原文 and originals, and a
writer uploads, replaces, deletes, rebuilds and cancels, all from a seeded random schedule, while faults
arrive in the middle of them: kill -9 of the server (then a restart), kill -9 while a snapshot is being
written and while a large document's job runs, the index disk full for a while (a small tmpfs the harness
mounts; without root the disk-full fault is left out and the summary says so), a file of the served snapshot
damaged on disk, slow and aborted clients, and hostile files in the corpus folder (a symbolic link out of it,
a file name in GBK, a file over the size limit).

A ledger keeps every acknowledged operation. Checked while the run goes on and at its end: every upload
answered 202 is in the corpus and, once the index has settled (after restarts too), is the first answer to a
question only it can answer; every acknowledged delete or replaced version never answers again; no 5xx but
503; no traceback in the server's log; the secret behind the link never appears; RSS, open files and threads
flat (the slope within each server's life after its first quarter, pooled); old snapshots pruned and no
temporary files left. The model is the hash embedder unless --model says otherwise (the checks are the same).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "soak-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "SECRETWHALE7"  # in a file outside the corpus folder, behind a symbolic link in it
MARK = "<!-- soak -->"


@dataclass
class Entry:
    """One document the harness was told is stored: its name, its current token, and its state."""

    source: str
    token: str
    doc_id: str
    deleted: bool = False
    retired: list[str] = field(default_factory=list)  # tokens of versions replaced since


@dataclass
class Tally:
    ops: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: list[tuple[int, float, float, int, int]] = field(default_factory=list)  # life, t, rss MiB, fds, threads
    index_mib: list[float] = field(default_factory=list)


def document(token: str, paragraphs: int = 3) -> bytes:
    """A notice only `token` names: the question `question(token)` has it as its one right answer."""
    body = [
        f"第{i + 1}条 本条规定第{i + 1}项工作的办理程序和材料要求，编号{i * 7919 % 100003}。" for i in range(paragraphs)
    ]
    head = f"关于{token}专项补贴的通知\n\n第零条 {token}专项补贴的标准为每户三千元，由街道办事处统一发放。\n"
    return (head + "\n".join(body) + "\n").encode("utf-8")


def question(token: str) -> str:
    return f"{token}专项补贴的标准是多少"


class Server:
    """`policyqa serve` on the harness's folders; killed with SIGKILL and started again by the faults."""

    def __init__(self, corpus: Path, index: Path, log: Path, model: str) -> None:
        self.corpus, self.index, self.log, self.model = corpus, index, log, model
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.life = 0

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "POLICYQA_MODEL": self.model,
            "POLICYQA_ADMIN_TOKEN": TOKEN,
            "POLICYQA_WATCH_SECONDS": "1",
            "POLICYQA_BODY_SECONDS": "5",
            "POLICYQA_MAX_UPLOAD_BYTES": str(8 * 2**20),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        cmd = [sys.executable, "-m", "policyqa", "serve", "--port", str(port)]
        cmd += ["--corpus", str(self.corpus), "--index", str(self.index)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        self.life += 1
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the server was not ready in 600 s; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class Disk:
    """The index folder on a small tmpfs, which a fault fills for a while (root only)."""

    def __init__(self, folder: Path, mib: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(folder)], capture_output=True, text=True
        )
        self.mounted = done.returncode == 0
        self.why = "" if self.mounted else (done.stderr.strip() or "mount failed")
        self.ballast = folder / ".ballast"

    def fill(self) -> None:
        with contextlib.suppress(OSError), self.ballast.open("wb") as fh:
            while True:
                fh.write(b"\0" * 2**20)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)


class Soak:
    def __init__(self, minutes: float, seed: int, work: Path, model: str, fault_every: float) -> None:
        self.rng = random.Random(seed)
        self.seed, self.minutes, self.work, self.fault_every = seed, minutes, work, fault_every
        self.corpus = work / "corpus"
        self.corpus.mkdir(parents=True)
        self.disk = Disk(work / "index", 96)
        self.server = Server(self.corpus, work / "index" / "idx", work / "server.log", model)
        self.tally = Tally()
        self.ledger: dict[str, Entry] = {}
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.calm = threading.Event()  # set while no fault is active (checks of the ledger wait for it)
        self.calm.set()
        self.writing = threading.Event()  # cleared while the checker looks at a settled index
        self.writing.set()
        self.names = itertools.count(1)
        self.suspects: dict[str, float] = {}  # failed checks, confirmed on a later settled check

    # --- talking to the server ----------------------------------------------------------------

    def call(self, method: str, path: str, **kw: object) -> httpx.Response | None:
        """One request; None when the server is down. A 5xx other than 503 is a violation."""
        try:
            resp = httpx.request(method, self.server.url + path, timeout=60, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError:
            return None
        with self.lock:
            self.tally.statuses[resp.status_code] += 1
            if resp.status_code >= 500 and resp.status_code != 503:
                rid = resp.headers.get("x-request-id", "?")
                self.tally.violations.append(
                    f"{resp.status_code} on {method} {path[:80]} (id {rid}): {resp.text[:200]}"
                )
        return resp

    def found(self, token: str, k: int = 5) -> list[tuple[str, str]] | None:
        """(source, text) of the answers to the question only `token`'s document answers; None: no answer."""
        resp = self.call("GET", "/api/search", params={"q": question(token), "k": k})
        if resp is None or resp.status_code != 200:
            return None
        hits = resp.json()["results"]
        if any(SECRET in h["text"] for h in hits):
            self.violation(f"the secret behind the link was served for {token}")
        return [(h["source"], h["text"]) for h in hits]

    def violation(self, what: str) -> None:
        with self.lock:
            self.tally.violations.append(what)

    # --- readers and the writer ---------------------------------------------------------------

    def reader(self) -> None:
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            with self.lock:
                live = [e for e in self.ledger.values() if not e.deleted]
            token = rng.choice(live).token if live and rng.random() < 0.7 else "高新技术企业"
            params: dict[str, object] = {"q": question(token), "k": rng.randint(1, 10)}
            if rng.random() < 0.3:
                params["group"] = "true"
            if rng.random() < 0.2:
                params["after"] = "2000-01-01"
            if rng.random() < 0.5:
                resp = self.call("GET", "/api/search", params=params)
            else:
                resp = self.call("POST", "/api/search", json=params)
            self.count("search")
            if resp is not None and resp.status_code == 200 and resp.json()["results"] and rng.random() < 0.3:
                doc_id = resp.json()["results"][0]["doc_id"]
                self.call("GET", f"/api/documents/{doc_id}/text")
                self.count("查看原文")
                if rng.random() < 0.3:
                    self.call("GET", f"/api/documents/{doc_id}/original", headers={"Range": "bytes=0-99"})
                    self.count("original")
            time.sleep(rng.uniform(0.05, 0.3))

    def count(self, what: str) -> None:
        with self.lock:
            self.tally.ops[what] += 1

    def writer(self, keep: int) -> None:
        """Uploads, deletes, replacements, rebuilds and cancels; the corpus stays near `keep` documents, so that
        memory measures leaks, not a growing index. Pauses while the checker looks at a settled index."""
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            self.writing.wait(5)
            with self.lock:
                live = [e for e in self.ledger.values() if not e.deleted]
            roll = rng.random()
            if not live or (roll < 0.4 and len(live) < keep):
                self.upload()
            elif roll < 0.65 or len(live) > keep:
                self.delete(rng.choice(live))
            elif roll < 0.85:
                self.replace(rng.choice(live))
            elif roll < 0.93:
                self.call("POST", "/api/index/rebuild", headers=AUTH, params={"full": str(rng.random() < 0.3).lower()})
                self.count("rebuild")
            else:
                self.cancel()
            time.sleep(rng.uniform(0.2, 1.2))

    def upload(self, data: bytes | None = None, token: str | None = None) -> Entry | None:
        token = token or f"QX{next(self.names):05d}{self.rng.randrange(16**6):06X}"
        name = f"soak-{token}.txt"
        resp = self.call("POST", "/api/documents", files={"file": (name, data or document(token))}, headers=AUTH)
        self.count("upload")
        if resp is None or resp.status_code != 202:
            return None
        body = resp.json()
        entry = Entry(body["source"], token, body["doc_id"])
        with self.lock:
            self.ledger[entry.source] = entry
        if not (self.corpus / entry.source).is_file():
            self.violation(f"upload {entry.source} acknowledged but not in the corpus folder")
        return entry

    def replace(self, entry: Entry) -> None:
        token = f"QR{next(self.names):05d}{self.rng.randrange(16**6):06X}"
        files = {"file": (entry.source, document(token))}
        resp = self.call("POST", "/api/documents", params={"replace": "true"}, files=files, headers=AUTH)
        self.count("replace")
        if resp is not None and resp.status_code == 202:
            with self.lock:
                entry.retired.append(entry.token)
                entry.token = token

    def delete(self, entry: Entry) -> None:
        resp = self.call("DELETE", f"/api/documents/{entry.doc_id}", headers=AUTH)
        self.count("delete")
        if resp is None:
            return
        if resp.status_code == 202:
            with self.lock:
                entry.deleted = True
            hits = self.found(entry.token, 10)
            if hits is not None and entry.source in [s for s, _ in hits]:
                self.violation(f"{entry.source} answered right after its delete was acknowledged")
        elif resp.status_code == 404:
            self.violation(f"delete of acknowledged {entry.source}: 404 {resp.text[:120]}")

    def cancel(self) -> None:
        resp = self.call("POST", "/api/index/rebuild", headers=AUTH, params={"full": "true"})
        if resp is not None and resp.status_code == 202:
            self.call("DELETE", f"/api/index/jobs/{resp.json()['job']['id']}", headers=AUTH)
        self.count("cancel")

    # --- faults -------------------------------------------------------------------------------

    def faults(self) -> None:
        kinds = ["kill9", "kill9_publish", "kill9_large", "damage", "slow_client", "aborted_client"]
        kinds += ["disk_full"] if self.disk.mounted else []
        while not self.stop.is_set():
            self.rng.shuffle(kinds)
            for kind in kinds:
                if self.stop.wait(self.fault_every * self.rng.uniform(0.6, 1.4)):
                    return
                self.calm.clear()
                try:
                    getattr(self, f"fault_{kind}")()
                    with self.lock:
                        self.tally.faults[kind] += 1
                finally:
                    self.calm.set()

    def restart(self) -> None:
        self.server.kill()
        self.server.start()

    def fault_kill9(self) -> None:
        self.restart()

    def fault_kill9_publish(self) -> None:
        """kill -9 while a snapshot is being written (its `.tmp-` folder is there)."""
        self.call("POST", "/api/index/rebuild", headers=AUTH, params={"full": "true"})
        snapshots = self.server.index / "snapshots"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(snapshots.glob(".tmp-*")):
            time.sleep(0.002)
        self.restart()

    def fault_kill9_large(self) -> None:
        """kill -9 while a large document (a job of its own) is embedding; it must be indexed all the same."""
        token = f"QL{next(self.names):05d}{self.rng.randrange(16**6):06X}"
        self.upload(document(token, 2600), token)
        time.sleep(self.rng.uniform(0.5, 3.0))
        self.restart()

    def fault_disk_full(self) -> None:
        self.disk.fill()
        self.upload()  # acknowledged: its update fails on the full disk and must be retried once space is back
        time.sleep(self.rng.uniform(5, 15))
        self.disk.free()

    def fault_damage(self) -> None:
        """Truncate a file of the served snapshot; the next update or start must set it aside and repair."""
        name = (self.server.index / "CURRENT").read_text(encoding="utf-8").strip()
        target = self.server.index / "snapshots" / name / "chunks.jsonl"
        with contextlib.suppress(OSError):
            size = target.stat().st_size
            os.truncate(target, size // 2)
        self.upload()
        if self.rng.random() < 0.5:
            self.restart()

    def fault_slow_client(self) -> None:
        """A body trickled a byte at a time must be cut off with a 408, not held for ever."""
        port = int(self.server.url.rsplit(":", 1)[1])
        head = b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n"
        answer = b""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(head)
            sock.settimeout(0.5)
            for byte in b'{"q": "' + b"a" * 40:
                sock.sendall(bytes([byte]))
                with contextlib.suppress(TimeoutError):
                    answer += sock.recv(4096)
                    break
        if not answer.startswith(b"HTTP/1.1 408"):
            self.violation(f"a trickled body got {answer[:40]!r}, not 408")

    def fault_aborted_client(self) -> None:
        """Clients that go away: half an upload, a search whose answer is never read."""
        port = int(self.server.url.rsplit(":", 1)[1])
        head = (
            b"POST /api/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
        )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                head + b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n\r\n" + b"x" * 500
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /api/search?q=%E8%A1%A5%E8%B4%B4 HTTP/1.1\r\nHost: x\r\n\r\n")

    def hostile_files(self) -> None:
        """What broke the service before: a link out of the folder, a name in GBK, a file over the limit."""
        outside = self.work / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text(f"机密\n\n{SECRET}是口令。{question('QSECRET')}\n", encoding="utf-8")
        (self.corpus / "passwd.txt").symlink_to(outside / "secret.txt")
        (self.corpus / "linked").symlink_to(outside, target_is_directory=True)
        fd = os.open(os.fsencode(self.corpus) + b"/" + "关于".encode("gbk") + b".txt", os.O_WRONLY | os.O_CREAT)
        os.write(fd, "甲市通知\n\n稳岗补贴通过网上申请。\n".encode("gbk"))
        os.close(fd)
        (self.corpus / "huge.html").write_bytes(b"<p>" + "长".encode() * (3 * 2**20) + b"</p>")
        self.tally.faults["hostile_files"] += 1

    # --- checks -------------------------------------------------------------------------------

    def settled(self) -> bool:
        """The index holds every change acknowledged so far: no job waiting or running, the last one done."""
        resp = self.call("GET", "/api/index/status")
        if resp is None or resp.status_code != 200:
            return False
        status = resp.json()
        job = status["job"]
        return status["state"] == "idle" and status["last_error"] is None and (job is None or job["state"] == "done")

    def verify(self, entries: list[Entry], confirm: bool) -> int:
        """Check entries against the index: live ones answer first, deleted and replaced ones never. A failure
        is a violation when it was seen on an earlier settled check too (`confirm`), else a suspect."""
        failures = 0
        for entry in entries:
            for token, live in [(entry.token, not entry.deleted), *((t, False) for t in entry.retired)]:
                hits = self.found(token, 10)
                if hits is None:
                    return failures  # the server went away: next time
                sources = [s for s, _ in hits]
                if live:
                    ok = sources[:1] == [entry.source] and token in hits[0][1]
                elif token == entry.token:  # deleted: the document never comes back, for any question
                    ok = entry.source not in sources
                else:  # a replaced version: its words are gone (the document itself stays, in its new version)
                    ok = not any(token in text for _, text in hits)
                key = f"{entry.source} {token} {'lost' if live else 'resurrected'}"
                if ok:
                    self.suspects.pop(key, None)
                    continue
                failures += 1
                if confirm and key in self.suspects:
                    self.violation(f"{key} (top answers {sources[:3]})")
                    self.suspects.pop(key)
                else:
                    self.suspects[key] = time.monotonic()
        return failures

    def checker(self) -> None:
        """Every 15 s: stop the writer, wait for the index to settle, check a sample of the ledger (and every
        entry that failed before), let the writer go on."""
        rng = random.Random(self.rng.random())
        while not self.stop.wait(15):
            self.writing.clear()
            try:
                deadline = time.monotonic() + 60
                while not self.stop.is_set() and time.monotonic() < deadline:
                    if self.calm.is_set() and self.settled():
                        break
                    time.sleep(0.5)
                else:
                    continue
                with self.lock:
                    entries = list(self.ledger.values())
                sample = rng.sample(entries, min(25, len(entries)))
                suspected = [e for e in entries if any(k.startswith(e.source + " ") for k in self.suspects)]
                self.verify(list({e.source: e for e in sample + suspected}.values()), confirm=True)
                self.count("check")
            finally:
                self.writing.set()

    def sampler(self) -> None:
        began = time.monotonic()
        while not self.stop.wait(2):
            proc = self.server.proc
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(OSError, ValueError, StopIteration):
                status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                rss = int(next(x for x in status if x.startswith("VmRSS")).split()[1]) / 1024
                threads = int(next(x for x in status if x.startswith("Threads")).split()[1])
                fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
                with self.lock:
                    self.tally.samples.append((self.server.life, time.monotonic() - began, rss, fds, threads))
                    self.tally.index_mib.append(folder_mib(self.server.index))

    def final(self) -> None:
        """After the run: the index settles (failed updates retried), then every entry is checked twice."""
        self.disk.free()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not self.settled():
            time.sleep(1)
        time.sleep(3)  # the watcher's next look, in case a change is still pending
        while time.monotonic() < deadline and not self.settled():
            time.sleep(1)
        entries = list(self.ledger.values())
        if self.verify(entries, confirm=False):
            time.sleep(5)
            self.verify(entries, confirm=True)
        for key in self.suspects:
            self.violation(f"{key} (at the end)")
        self.leftovers()

    def leftovers(self) -> None:
        index, corpus = self.server.index, self.corpus
        snapshots = [p for p in (index / "snapshots").iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(snapshots) > 3:
            self.violation(f"{len(snapshots)} snapshots kept; old ones are not pruned")
        temporary = [*(index / "snapshots").glob(".tmp-*"), *index.glob(".CURRENT.*")]
        temporary += [p for p in corpus.glob(".upload-*") if time.time() - p.stat().st_mtime > 90]
        if temporary:
            self.violation(f"temporary files left behind: {[p.name for p in temporary]}")
        log = self.server.log.read_text(encoding="utf-8", errors="replace")
        if "Traceback" in log:
            self.violation(f"{log.count('Traceback')} tracebacks in {self.server.log}")

    # --- the run ------------------------------------------------------------------------------

    def run(self, readers: int = 2, keep: int = 40) -> Tally:
        if not self.disk.mounted:
            self.tally.notes.append(f"index disk full not injected: no tmpfs ({self.disk.why})")
        self.server.index.mkdir(parents=True, exist_ok=True)
        (self.corpus / "seed.txt").write_text("科技企业支持措施\n\n对新认定的高新技术企业给予奖励20万元。\n", "utf-8")
        self.hostile_files()
        self.server.start()
        workers = [self.reader for _ in range(readers)] + [lambda: self.writer(keep), self.faults]
        threads = [threading.Thread(target=w, daemon=True) for w in [*workers, self.checker, self.sampler]]
        for t in threads:
            t.start()
        self.stop.wait(self.minutes * 60)
        self.stop.set()
        for t in threads:
            t.join(600)
        try:
            if self.server.proc is None or self.server.proc.poll() is not None:
                self.server.start()
            self.final()
        finally:
            self.server.stop()
            self.disk.unmount()
        return self.tally


def folder_mib(folder: Path) -> float:
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total / 2**20


def slope(samples: list[tuple[int, float, float, int, int]], column: int) -> float:
    """Change per 10 minutes within each server's life (after its first quarter), pooled over the lives: a
    restart resets the process, so one line over the whole run would measure the kills, not a leak."""
    lives: dict[int, list[tuple[float, float]]] = {}
    for row in samples:
        lives.setdefault(row[0], []).append((row[1], float(row[column])))
    num = den = 0.0
    for points in lives.values():
        if len(points) < 8:
            continue
        start = points[0][0] + (points[-1][0] - points[0][0]) / 4
        kept = [(t, v) for t, v in points if t >= start]
        mt = sum(t for t, _ in kept) / len(kept)
        mv = sum(v for _, v in kept) / len(kept)
        num += sum((t - mt) * (v - mv) for t, v in kept)
        den += sum((t - mt) ** 2 for t, _ in kept)
    return num / den * 600 if den else float("nan")


def summary(tally: Tally, minutes: float, seed: int, model: str) -> str:
    ops = ", ".join(f"{k} {v}" for k, v in sorted(tally.ops.items()))
    faults = ", ".join(f"{k} {v}" for k, v in sorted(tally.faults.items()))
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()))
    rows = [
        ("run", f"{minutes:g} minutes, seed {seed}, model {model}"),
        ("operations", ops),
        ("faults injected", faults),
        ("answers by status", statuses),
        ("RSS slope (MiB per 10 min)", f"{slope(tally.samples, 2):+.2f}"),
        ("open files slope (per 10 min)", f"{slope(tally.samples, 3):+.2f}"),
        ("threads slope (per 10 min)", f"{slope(tally.samples, 4):+.2f}"),
        ("RSS range (MiB)", _range([s[2] for s in tally.samples])),
        ("index folder (MiB)", _range(tally.index_mib)),
        ("violations", str(len(tally.violations))),
    ]
    lines = ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    lines += [f"- note: {n}" for n in tally.notes] + [f"- violation: {v}" for v in tally.violations[:50]]
    return "\n".join(lines)


def _range(values: list[float]) -> str:
    return f"{min(values):.1f} - {max(values):.1f}" if values else "-"


def write_results(path: Path, text: str, command: str) -> None:
    """Replace the soak section of RESULTS.md (between two markers), keeping the other benchmarks' tables."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"{MARK}\n## Soak\n\n`{command}`, {stamp}\n\n{text}\n{MARK}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    parts = old.split(MARK + "\n")
    new = (
        parts[0] + section + (parts[2] if len(parts) >= 3 else "")
        if len(parts) >= 3
        else old.rstrip() + "\n\n" + section
    )
    path.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="how long to run (default 60)")
    p.add_argument("--seed", type=int, default=30, help="seed of the random schedule")
    p.add_argument("--model", default="hash", help="POLICYQA_MODEL of the server (default: the hash embedder)")
    p.add_argument("--fault-every", type=float, default=None, help="seconds between faults (default: by --minutes)")
    p.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    args = p.parse_args(argv)
    # 60 minutes: a fault a minute, 7 kinds in turn: about 25 kill -9s (three kinds) and 8 disk-full periods
    every = args.fault_every or (60.0 if args.minutes >= 30 else 12.0)
    work = Path(tempfile.mkdtemp(prefix="policyqa-soak-"))
    tally = Soak(args.minutes, args.seed, work, args.model, every).run()
    if tally.violations:
        tally.notes.append(f"the folders and the server's log are kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    text = summary(tally, args.minutes, args.seed, args.model)
    print(text)
    if not args.no_results:
        write_results(ROOT / "bench" / "RESULTS.md", text, "python bench/soak.py " + " ".join(argv or sys.argv[1:]))
    return 1 if tally.violations else 0


if __name__ == "__main__":
    sys.exit(main())
