"""Whether the corpus folder may have changed, from the kernel's file events, so that the service need not
walk every file of the corpus every few seconds to find out.

A walk of 23,552 files took 0.45 s of the interpreter; the service looked every 5 s
(POLICYQA_WATCH_SECONDS), a tenth of a core spent watching, in stretches that held the interpreter against
searches. With events (inotify on Linux, through watchfiles) the service walks only after something in the
folder moved, and once every `every` seconds all the same: events can be lost (a network share, an
overflowing queue). Without them (watchfiles missing, a folder it cannot watch) every look walks. Each folder
is watched on its own, never through a symbolic link: nothing outside the corpus folder is listed or watched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

from policyqa.ingest.loaders import SKIP_DIRS

log = logging.getLogger("policyqa")

WALK_EVERY = 60.0  # seconds: the longest time between two walks while events come in


class CorpusWatcher:
    def __init__(self, folder: Path, every: float) -> None:
        self.folder = folder
        self.every = every  # seconds: the longest time between two walks, events or not
        self._moved = threading.Event()
        self._moved.set()  # nothing is known before the first walk
        self._stop = threading.Event()
        self._walked = 0.0
        self._thread: threading.Thread | None = None
        self.watching = False  # events are coming in (the thread is up and its watch is set)

    def start(self) -> CorpusWatcher:
        if self._thread is None and self.folder.is_dir():
            self._thread = threading.Thread(target=self._run, name="policyqa-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def due(self) -> bool:
        """Whether a walk is due: something moved since the last one, events are not coming in, or the last
        walk is `every` seconds old. Saying yes counts as the walk (events from now on are for the next)."""
        if self._thread is None:
            self.start()  # the folder may have been made since
        now = time.monotonic()
        if not self.watching or self._moved.is_set() or now - self._walked >= self.every:
            self._moved.clear()
            self._walked = now
            return True
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with contextlib.suppress(FileNotFoundError):  # a folder went while the watch was set: again
                    self._watch(folders(self.folder))
        except Exception as exc:  # no inotify, too many folders for its limit, the folder gone: walk each time
            log.warning("not watching %s for changes (%s); walking it at every look", self.folder, exc)
        finally:
            self.watching = False

    def _watch(self, watched: set[str]) -> None:
        """Watch these folders (each on its own: a recursive watch would follow symbolic links out of the
        corpus) until one comes or goes, then return for a watch of the new set."""
        from watchfiles import Change, watch

        self.watching = False  # whatever moves while the watch is being set is for a walk
        # every event counts, editors' swap files included: a walk decides what changed
        events = watch(
            *sorted(watched),
            watch_filter=None,
            stop_event=self._stop,
            yield_on_timeout=True,
            debounce=200,
            rust_timeout=1000,
            recursive=False,
        )
        for changes in events:
            if changes or not self.watching:  # the first time: whatever moved before the watch was set
                self._moved.set()
            self.watching = True
            for change, path in changes:
                grown = change == Change.added and os.path.isdir(path) and not os.path.islink(path)
                if grown or (change == Change.deleted and path in watched):
                    return


def folders(root: Path) -> set[str]:
    """The corpus folder and the folders under it that a walk of the corpus enters: not hidden, not an
    evaluation set, never a symbolic link (os.walk does not follow them)."""
    found = set()
    for base, subfolders, _ in os.walk(root):
        found.add(base)
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in SKIP_DIRS]
    return found
