"""`SandboxProcess`: the same sandbox in a child process, so that it does not share the
benchmarked program's GIL (the sandbox must never be the bottleneck)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from routing_core.errors import LeadgateError

from .faults import parse
from .sandbox import SandboxClients

_ROOT = Path(__file__).resolve().parents[2]


class SandboxProcess(SandboxClients):
    """Start with the keyword arguments of `Sandbox` (JSON-serialisable ones); same attributes
    and clients, `counts()`, settable `faults` and `expire_sessions()` over a loopback admin
    endpoint. No `store`: state lives in the child."""

    def __init__(self, **options: Any) -> None:
        if options.get("faults"):
            parse(options["faults"])  # a bad spec fails here, in one line, not in the child
        self.options = options
        self._proc: subprocess.Popen[str] | None = None
        self.admin_token = ""
        self.final_counts: dict[str, dict[str, int]] | None = None

    def start(self) -> SandboxProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "connectors.sandbox", json.dumps(self.options)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=_ROOT)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            self._proc.wait()
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise LeadgateError(f"the sandbox process did not start: {last}",
                                where="connectors.sandbox", fix="check the sandbox options")
        info = json.loads(line)
        for key, value in info.items():
            setattr(self, key, value)
        self.ca_file = Path(info["ca_file"])
        self.sizes = (int(info["sizes"][0]), int(info["sizes"][1]))
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            out, _ = self._proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        for line in out.splitlines():
            if line.startswith('{"counts"'):
                self.final_counts = json.loads(line)["counts"]
        self._proc = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _admin(self, method: str, what: str, body: str | None = None) -> Any:
        r = self.requests_session().request(
            method, f"{self.salesforce_instance_url}/_sandbox/{what}", data=body,
            headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30)
        if r.status_code >= 400:
            raise LeadgateError(r.json().get("error", r.text), where=f"sandbox {what}")
        return r.json() if r.content else None

    def counts(self) -> dict[str, dict[str, int]]:
        if self._proc is None and self.final_counts is not None:
            return self.final_counts
        result: dict[str, dict[str, int]] = self._admin("GET", "counts")
        return result

    def reset_counts(self) -> None:
        self._admin("DELETE", "counts")

    @property
    def faults(self) -> str | None:
        return self.options.get("faults")

    @faults.setter
    def faults(self, spec: str | None) -> None:
        self._admin("PUT", "faults", spec or "")
        self.options["faults"] = spec

    def expire_sessions(self) -> None:
        self._admin("POST", "expire_sessions")
