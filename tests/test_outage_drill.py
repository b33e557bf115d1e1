"""The database outage drill: PostgreSQL stopped under load and started again loses nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_outage_fails_fast_with_503_recovers_and_loses_no_acknowledged_report(
    database_url: str,
) -> None:
    if shutil.which("pg_createcluster") is None or os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the outage drill needs Debian's pg_createcluster and root")
        pytest.skip("needs Debian's pg_createcluster and root")
    result = subprocess.run(
        [sys.executable, "-m", "bench.outage.run", "--down-seconds", "4", "--clients", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout
    assert result.returncode == 0, report + result.stderr[-3000:]
    assert "lost: 0" in report
    assert "503" in report and "500:" not in report
