"""The machine-wide llama.cpp lock lets a waiting process in between another one's calls."""

from __future__ import annotations

import subprocess
import sys
import time

HOG = """
import os, sys, time
from pathlib import Path
from placecell.tools.llm.llamacpp import MachineLock
lock, counter, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
tmp = counter.with_suffix(".tmp")
for i in range(n):
    with MachineLock(path=lock):  # many short calls back to back, like a retrieval eval
        tmp.write_text(str(i))
        os.replace(tmp, counter)  # atomic: a reader never sees a half-written number
        end = time.perf_counter() + 0.005
        while time.perf_counter() < end:  # llama.cpp's threads spin; so does this call
            pass
tmp.write_text("done")
os.replace(tmp, counter)
"""

WAITER = """
import sys
from pathlib import Path
from placecell.tools.llm.llamacpp import MachineLock
lock, counter = Path(sys.argv[1]), Path(sys.argv[2])
queued_at = counter.read_text()
with MachineLock(path=lock):
    print(queued_at, counter.read_text())
"""


def test_a_waiting_process_gets_the_next_turn(tmp_path, monkeypatch):
    monkeypatch.delenv("PLACECELL_LLM_MACHINE_LOCK", raising=False)
    lock, counter, calls = tmp_path / "llm.lock", tmp_path / "counter", 2000
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(lock), str(counter), str(calls)])
    waited = []
    try:
        while not counter.exists():
            time.sleep(0.01)
        for _ in range(5):
            out = subprocess.run([sys.executable, "-c", WAITER, str(lock), str(counter)],
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            queued_at, got_in_at = out.stdout.split()
            waited.append(int(got_in_at) - int(queued_at))
    finally:
        hog.kill()
        hog.wait(timeout=60)
    # queued during the busy process's call n, a waiter runs before its call n + 2 at the latest;
    # a bare flock let the busy process take it back up to 4 calls in a row on an idle machine
    assert max(waited) <= 3, waited


def test_a_crashed_holder_does_not_block_the_machine(tmp_path):
    lock = tmp_path / "llm.lock"
    crash = ("import os, sys\nfrom pathlib import Path\nfrom placecell.tools.llm.llamacpp import MachineLock\n"
             "MachineLock(path=Path(sys.argv[1])).__enter__()\nos._exit(1)\n")
    assert subprocess.run([sys.executable, "-c", crash, str(lock)], timeout=60).returncode == 1
    from placecell.tools.llm.llamacpp import MachineLock

    with MachineLock(path=lock) as held:  # would hang if the dead process still held it
        assert held._fh is not None
