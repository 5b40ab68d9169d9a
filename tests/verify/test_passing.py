"""Each check, alone, passes on a healthy lab; and --all passes with every check."""

import pytest

from labctl.verify.catalogue import CHECKS
from labctl.verify.model import Status
from labctl.verify.runner import run_checks
from tests.verify.conftest import run_one, text_of

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_check_passes_on_a_healthy_lab(lab, vctx, check_id):
    lab.publish()
    result = run_one(vctx, check_id)
    assert result.status is Status.PASS, text_of(result)
    assert result.attempts == 1 and result.mismatches == [] and result.evidence == [] and result.hints == []


def test_every_check_passes_at_once(lab, vctx):
    lab.publish()
    report = run_checks(CHECKS, vctx, deadline=3, reraise_bugs=True)
    assert {r.id: r.status.value for r in report.results} == {c.id: "pass" for c in CHECKS}
    assert report.ok
