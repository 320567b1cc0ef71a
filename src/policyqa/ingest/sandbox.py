"""Parsing of untrusted files in a child process, under memory, CPU and wall-clock limits.

`ingest.parse` runs in `python -m policyqa.ingest.sandbox`, which first applies the format-level limits
(`formats.check`) and then parses under RLIMIT_AS and RLIMIT_CPU. A bomb costs the child, never the
service: the parent only sends bytes and receives a Document, and a child that dies or overruns is
replaced. Frames on the pipes are an 8-byte length and a pickle (the child is our own code).
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from policyqa.errors import DocumentError
from policyqa.ingest.limits import MIB, Limits
from policyqa.ingest.ocr import Budget
from policyqa.models import Document

_HEADER = struct.Struct("<Q")
PageProgress = Callable[[str, int, int], None]  # (source, pages read by OCR so far, pages to read)


class Sandbox:
    """One child process parsing files one after another; replaced when it dies or runs over time."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _child(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            package_root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
            env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
            env["MALLOC_ARENA_MAX"] = "2"  # a thread's malloc arena reserves 64 MiB of the address space limit
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "policyqa.ingest.sandbox", repr(asdict(self.limits))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        return self._proc

    def parse(self, data: bytes, source: str, on_page: PageProgress | None = None) -> Document:
        """The Document of one file, or DocumentError naming the file and the limit it ran into. A file read
        by OCR gets the OCR time limit from its first page on, and `on_page(source, done, total)` is told
        of its pages as they are read."""
        proc = self._child()
        assert proc.stdin is not None and proc.stdout is not None
        began, seconds = time.monotonic(), self.limits.seconds
        try:
            _write(proc.stdin, (source, data))
            while True:
                kind, value = _read(proc.stdout, began + seconds)
                if kind != "progress":
                    break
                seconds = max(self.limits.seconds, self.limits.ocr_seconds)
                if on_page is not None:
                    on_page(source, *value)
        except TimeoutError:
            self._kill()
            setting = "POLICYQA_OCR_SECONDS" if seconds > self.limits.seconds else "POLICYQA_PARSE_SECONDS"
            raise DocumentError(f"{source}: parsing took longer than {seconds:g} s, the limit ({setting})") from None
        except (OSError, EOFError):
            code = self._kill()
            raise DocumentError(f"{source}: {_death(code, self.limits)}") from None
        except BaseException:  # on_page stopped the parse (a cancelled job): the child is mid-file
            self._kill()
            raise
        if kind == "ok":
            assert isinstance(value, Document)
            if value.scanned:
                self.close()  # the child ends after OCR (see _budget): wait for it, do not write to it
            return value
        if kind == "restart":
            self._kill()
        raise DocumentError(str(value))

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        return code


def parse(data: bytes, source: str, limits: Limits | None = None, on_page: PageProgress | None = None) -> Document:
    """Parse one untrusted file in a child process of its own."""
    with Sandbox(limits) as box:
        return box.parse(data, source, on_page)


def _death(code: int | None, limits: Limits) -> str:
    memory = f"{limits.memory_bytes // MIB} MiB"
    if code == -signal.SIGXCPU:
        return (
            f"parsing used more than {limits.seconds:g} s of CPU, the limit (POLICYQA_PARSE_SECONDS; "
            "for a file read by OCR, POLICYQA_OCR_SECONDS)"
        )
    return (
        f"the parser died ({_signal_name(code)}), most likely over the memory limit of {memory} "
        "(POLICYQA_PARSE_MEMORY_BYTES); split the document"
    )


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return f"exit code {code}"


def _write(stream: IO[bytes], obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read(stream: IO[bytes], deadline: float | None = None) -> Any:
    fd = stream.fileno()
    header = _read_exactly(fd, _HEADER.size, deadline)
    return pickle.loads(_read_exactly(fd, _HEADER.unpack(header)[0], deadline))


def _ready(fd: int, wait: float) -> bool:
    """Whether `fd` has something to read within `wait` seconds. poll, not select: select refuses descriptors
    past 1023, which a long-running service (or a test process) holding many files reaches."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(0, math.ceil(wait * 1000))))


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytes:
    parts, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not _ready(fd, wait):
                raise TimeoutError
        part = os.read(fd, min(left, 4 * MIB))
        if not part:
            raise EOFError
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


# --- the child ------------------------------------------------------------------------------------


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _serve(limits: Limits) -> None:
    import resource

    from policyqa.ingest import formats
    from policyqa.ingest import loaders as ingest

    # Frames go to the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = os.fdopen(os.dup(0), "rb")
    sys.setrecursionlimit(4000)
    start = _address_space()
    ceiling = start + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, resource.RLIM_INFINITY))
    while True:
        try:
            source, data = _read(inp)
        except EOFError:
            return
        _cpu_limit(limits.seconds)
        reply: tuple[str, Any]
        try:
            formats.check(data, source, limits)
            reply = ("ok", ingest.parse(data, source, budget=_budget(limits, out, start)))
        except (DocumentError, MemoryError, RecursionError) as exc:
            now = resource.getrlimit(resource.RLIMIT_AS)[0]  # raised for OCR, if it started
            reply = _failure(exc, source, limits, _peak() > now - 32 * MIB, now > ceiling)
        except Exception as exc:  # a parser library failing on a broken file
            reply = _failure(DocumentError(f"{source}: cannot be read ({type(exc).__name__}: {exc})"), source, limits)
        data = b""
        _write(out, reply)
        if reply[0] == "restart" or resource.getrlimit(resource.RLIMIT_AS)[0] > ceiling:
            return  # a heap that ran out is not worth keeping, nor one that holds the OCR engine


def _cpu_limit(seconds: float) -> None:
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, resource.RLIM_INFINITY))


def _budget(limits: Limits, out: IO[bytes], start: int) -> Budget:
    """What OCR may cost this file; each page read is told to the parent. Before the first, the CPU limit
    moves to the OCR time limit (as the parent does with its clock) and the address space to the OCR memory
    limit (the engine's models and ONNX Runtime's threads reserve far more than a text parser needs); the
    child then ends after this file, so the next starts under the usual limits."""

    def on_page(done: int, total: int) -> None:
        if done == 0:
            import resource

            _cpu_limit(max(limits.seconds, limits.ocr_seconds))
            ceiling = start + max(limits.memory_bytes, limits.ocr_memory_bytes)
            resource.setrlimit(resource.RLIMIT_AS, (ceiling, resource.RLIM_INFINITY))
        _write(out, ("progress", (done, total)))

    return Budget(limits.ocr_pages, limits.image_pixels, on_page)


def _peak() -> int:
    """The most address space this process has held (libraries such as lxml report a failed allocation
    as some other error; reaching the ceiling says what it was)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _failure(
    exc: BaseException, source: str, limits: Limits, out_of_memory: bool = False, ocr: bool = False
) -> tuple[str, str]:
    """The reply for a failed parse; after running out of memory or stack the child starts afresh."""
    cause = exc if isinstance(exc, (MemoryError, RecursionError)) else exc.__cause__
    if isinstance(cause, MemoryError) or out_of_memory:
        memory = f"{(limits.ocr_memory_bytes if ocr else limits.memory_bytes) // MIB} MiB"
        setting = "POLICYQA_OCR_MEMORY_BYTES" if ocr else "POLICYQA_PARSE_MEMORY_BYTES"
        return "restart", f"{source}: parsing needs more than {memory} of memory ({setting})"
    if isinstance(cause, RecursionError):
        return "restart", f"{source}: the document is nested too deeply to parse (POLICYQA_MAX_HTML_DEPTH)"
    return "error", str(exc)


def main() -> None:
    import ast

    try:
        _serve(Limits(**ast.literal_eval(sys.argv[1])))
    except BrokenPipeError:  # the service went away (killed) while this child answered: nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


if __name__ == "__main__":
    main()
