"""benchmarks/evaluate_gender.py: the gender evidence on the real Sapsanis recordings, end to end."""

import pytest

from conftest import REALDATA, ROOT, run_python

SAPSANIS = REALDATA / "sapsanis-db1"


@pytest.mark.slow
@pytest.mark.skipif(not any(SAPSANIS.glob("*.mat")), reason="the Sapsanis recordings (../shared/realdata) are absent")
def test_the_gender_table_has_every_method_and_subject(tmp_path):
    result = run_python(ROOT / "benchmarks" / "evaluate_gender.py", "--work_dir", tmp_path, "--workers", "1")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "method" not in line]
    assert len(rows) == 5 and "1800 matrices" in result.stdout
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 3 + 5, row  # method, per trial, per subject, then the 5 subjects
        share = [float(cell) for cell in cells[3:]]
        assert all(0 <= value <= 1 for value in share) and cells[2].endswith("/ 5")
