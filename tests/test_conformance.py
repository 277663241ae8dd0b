"""MCP's official conformance suite (@modelcontextprotocol/conformance, from tests/js) against a
real `ddsearch serve` at /mcp: the scenarios that apply to a server of tools pass, and none of
the suite's requests, those for features it does not serve included, logs a traceback."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _servers import REPO, _stop

JS = REPO / "tests" / "js"
CLI = JS / "node_modules" / ".bin" / "conformance"
# a server of tools: the handshake, ping, listing and calling tools (an unknown one is an
# error), and the DNS-rebinding protection of a server on loopback
APPLY = ["server-initialize", "ping", "tools-list", "tools-call-error", "dns-rebinding-protection"]


@pytest.fixture(scope="module")
def server(indexed_home, tmp_path_factory):
    """`ddsearch serve` on loopback with its log (not --quiet) in a file: (url, log path)."""
    if not CLI.exists() or shutil.which("node") is None:
        pytest.fail("the conformance suite is not installed: run 'make test' (npm ci in tests/js)")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ddsearch.cli", "--home", str(indexed_home), "serve",
             "--port", "0"],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 300)
        line = proc.stdout.readline() if ready else ""
        assert " on http://" in line, log.read_text()
        yield line.split(" on ", 1)[1].split("/ ", 1)[0], log
    finally:
        _stop(proc)


def _run(url: str, out: Path, *args: str) -> dict[str, list[dict]]:
    """The suite's checks by scenario, from the results it writes."""
    subprocess.run([str(CLI), "server", "--url", f"{url}/mcp", "-o", str(out), *args],
                   cwd=JS, capture_output=True, text=True, timeout=900)  # fmt: skip
    found: dict[str, list[dict]] = {}
    for checks in out.glob("*/checks.json"):
        # "server-ping-2026-12-07T05-03-20-834Z": the name before the run's timestamp (whose
        # minutes or seconds may read "-20" too)
        scenario = re.sub(
            r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", checks.parent.name.removeprefix("server-")
        )
        found[scenario] = json.loads(checks.read_text())
    return found


def test_the_scenarios_of_a_server_of_tools_pass(server, tmp_path):
    url, _ = server
    for scenario in APPLY:
        checks = _run(url, tmp_path / scenario, "--scenario", scenario)[scenario]
        failed = [c for c in checks if c["status"] not in ("SUCCESS", "INFO")]
        assert checks and not failed, (scenario, failed)


def test_no_request_of_the_whole_suite_logs_a_traceback(server, tmp_path):
    url, log = server
    started = time.monotonic()
    found = _run(url, tmp_path / "all", "--suite", "all")
    assert set(APPLY) <= set(found) and time.monotonic() - started < 900
    assert "Traceback" not in log.read_text()
    for scenario in ("prompts-get-simple", "resources-list"):  # not served: refused cleanly
        assert scenario in found
