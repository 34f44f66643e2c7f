"""Run tokenfix on a pseudo-terminal, as a person at a keyboard would, and answer its prompts."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time


class Terminal:
    def __init__(self, *args: str, env: dict[str, str], columns: int = 160):
        leader, follower = pty.openpty()
        self.leader = leader
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tokenfix", *args],
            stdin=follower, stdout=follower, stderr=follower,
            env={**os.environ, **env, "TERM": "xterm", "COLUMNS": str(columns)},
            close_fds=True,
        )  # fmt: skip
        os.close(follower)
        self.raw = ""

    @property
    def screen(self) -> str:
        """What was written, without colours and cursor movements, on one line per line."""
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.raw)
        return text.replace("\r\n", "\n").replace("\r", "")

    def read_until(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}; screen:\n{self.screen}")
            ready, _, _ = select.select([self.leader], [], [], 0.1)
            if ready:
                try:
                    self.raw += os.read(self.leader, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
        return self.screen

    def type(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.leader], [], [], 0.1)
            if ready:
                try:
                    self.raw += os.read(self.leader, 65536).decode(errors="replace")
                except OSError:
                    break
        code = self.process.wait(timeout=max(1, deadline - time.monotonic()))
        os.close(self.leader)
        return code
