"""A real Prometheus server for the tests: Debian's ``/usr/bin/prometheus`` on a free port.

One server per test run (the ``prometheus`` fixture; xdist workers attach to the one server with
``PrometheusServer.attach``). It scrapes every second the targets a test hands to ``scrape()``:
one file_sd file per label set, which the server watches, so targets change without a restart
and tests running at the same time in other workers never overwrite each other's. Queries go
through the HTTP API, and an error answer is an exception naming the query.

    prometheus.scrape(["127.0.0.1:9400"], namespace="it-abc", pod="scorer-0")
    prometheus.wait_for("sum(scorer_ready{namespace='it-abc'}) == 1")
    prometheus.query("rate(scorer_messages_total[30s])")   # -> list of {"metric", "value"}
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.consumer.process import free_port
from tests.observability import prometheus_binary

# The job name the alerts and the dashboard select (the Kubernetes Service's name).
SCRAPE_JOB = "shopper-intent-scorer"
SCRAPE_INTERVAL = "1s"


class PrometheusQueryError(RuntimeError):
    """The server answered a query with an error (bad PromQL, a type error, ...)."""

    def __init__(self, query: str, error_type: str, error: str) -> None:
        super().__init__(f"{error_type}: {error}\n  query: {query}")
        self.query = query


class PrometheusServer:
    """``prometheus`` with its config, data and log in ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def attach(cls, workdir: Path, port: int) -> PrometheusServer:
        """The server another process started in ``workdir`` on ``port``."""
        return cls(workdir, port)

    def start(self, timeout_s: float = 60) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {
                        "scrape_interval": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL,
                    },
                    "scrape_configs": [
                        {
                            "job_name": SCRAPE_JOB,
                            "scrape_interval": SCRAPE_INTERVAL,
                            "scrape_timeout": SCRAPE_INTERVAL,
                            "file_sd_configs": [
                                {
                                    "files": [str(self.workdir / "targets-*.json")],
                                    "refresh_interval": "1s",
                                }
                            ],
                        }
                    ],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(prometheus_binary("prometheus")),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=2h",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {timeout_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)

    def scrape(self, targets: list[str], **labels: str) -> None:
        """Scrape exactly ``targets`` (``host:port``) with these target labels from now on; an
        empty list stops scraping that label set."""
        name = re.sub(
            r"[^A-Za-z0-9_.=-]", "_", "-".join(f"{k}={v}" for k, v in sorted(labels.items()))
        )
        path = self.workdir / f"targets-{name}.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(
            json.dumps([{"targets": targets, "labels": labels}] if targets else []),
            encoding="utf-8",
        )
        partial.replace(path)  # atomic: the server never reads half a file

    def api(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:  # 400/422: the body says why
            body = json.loads(error.read())
        if body.get("status") != "success":
            raise PrometheusQueryError(
                params.get("query", str(params)), body.get("errorType", "?"), body.get("error", "")
            )
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result: a list of {"metric": labels, "value": [time, "text"]}."""
        data = self.api("query", {"query": expr})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The value of a query expected to return at most one series (None when none)."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} returned {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns a series; return it (the first scrape comes within ~1 s)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no series for {expr} after {timeout_s}s:\n{self.log_tail()}")
            time.sleep(0.25)

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values", {"match[]": match})
        return values

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"
