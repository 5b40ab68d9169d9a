"""Mutation tests: for each course claim (each check of the catalogue), a broken lab
where exactly that check fails and the checks sharing its objects still pass. The
broken labs are the passing hand-built fixtures with one mutation (mutations.py)."""

from __future__ import annotations

import pytest

from labctl.verify.catalogue import CHECKS, ids
from labctl.verify.model import Status
from labctl.verify.runner import run_checks
from labctl.report.verify import details
from tests.verify.mutations import MUTATIONS

pytestmark = pytest.mark.slow


def test_every_claim_has_a_mutation():
    assert sorted(MUTATIONS) == sorted(ids())
    for check_id, m in MUTATIONS.items():
        assert m.siblings and check_id not in m.siblings and set(m.siblings) <= set(ids()), check_id


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_the_mutation_fails_exactly_its_claim(fixture_lab, vctx, check_id):
    mutation = MUTATIONS[check_id]
    lab = fixture_lab("passing").answer_like_a_healthy_lab()
    mutation.apply(lab)
    chosen = [c for c in CHECKS if c.id == check_id or c.id in mutation.siblings]
    report = run_checks(chosen, vctx, deadline=0.01, reraise_bugs=True)
    status = {r.id: r.status for r in report.results}
    failed = {r.id: details(r) for r in report.results if r.status is not Status.PASS}
    assert status[check_id] is Status.FAIL, failed
    assert set(failed) == {check_id}, failed
    [target] = [r for r in report.results if r.id == check_id]
    assert mutation.says in str(target.mismatches[0]), [str(m) for m in target.mismatches]
