"""The soak harness's short run (bench/soak.py): two minutes of readers and a writer against a real server
while kill -9s, a full index disk, a damaged snapshot, slow and aborted clients and hostile files arrive; not
one acknowledged write lost or resurrected, no 5xx but 503, no traceback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def soak_module():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.soak
def test_two_minutes_of_use_under_faults_lose_nothing(tmp_path: Path) -> None:
    soak = soak_module()
    work = tmp_path / "soak"
    tally = soak.Soak(minutes=2, seed=30, work=work, model="hash", fault_every=12).run()
    text = soak.summary(tally, 2, 30, "hash")
    print(text)
    assert tally.violations == [], text
    assert tally.ops["upload"] >= 5 and tally.ops["delete"] >= 1 and tally.ops["search"] >= 50, text
    assert tally.ops["check"] >= 1, text  # the ledger was checked against a settled index during the run
    assert sum(n for kind, n in tally.faults.items() if kind.startswith("kill9")) >= 1, text
    assert sum(tally.faults.values()) >= 5 and tally.faults["hostile_files"] == 1, text
    assert tally.statuses[200] > 0 and not [s for s in tally.statuses if s >= 500 and s != 503], text
