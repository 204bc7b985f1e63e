"""A child process's stdout read on a thread, for tests that wait on lines (kubectl get -w)."""
from __future__ import annotations

import queue
import subprocess
import threading
import time


class LineReader:
    """Reads a child's stdout on a thread, so tests can wait for a line with a timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if predicate(line):
                return line
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        raise AssertionError(f"no matching line within {timeout}s; saw {self.seen!r}; stderr {err!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
