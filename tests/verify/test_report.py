"""Reports: the terminal table with reasons, JSON, JUnit XML (all four statuses)."""

import json
import xml.etree.ElementTree as ET

from labctl.verify.model import CheckResult, Evidence, Mismatch, Status, VerifyReport
from labctl.report.verify import render_json, render_junit, render_text


def report():
    return VerifyReport([
        CheckResult("lab-nodes-ready", "nodes Ready", Status.PASS, 0.12),
        CheckResult("pod-3", "pod-3 runs on k8s-node1", Status.FAIL, 30.0, attempts=15,
                    mismatches=[Mismatch("spec.nodeName", "k8s-node1", "k8s-node2")],
                    evidence=[Evidence("events of Pod default/pod-3", tuple(f"line {i}" for i in range(20)))],
                    hints=["the worker's hostname must be exactly k8s-node1"]),
        CheckResult("lab-dns", "CoreDNS", Status.ERROR, 5.0, attempts=3, message="get Service kube-system/kube-dns: cannot reach the Kubernetes API (connection refused)",
                    hints=["is the lab up? `labctl status`"]),
        CheckResult("pod-4", "pod-4 <resources> & \"limits\"", Status.SKIP, 0.0, attempts=0, message="the lab has no node named k8s-node1"),
    ], duration=30.5)


def test_text_table_and_reasons():
    text = render_text(report())
    lines = text.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "TIME", "TITLE"]
    assert lines[1].split()[:3] == ["lab-nodes-ready", "PASS", "0.1s"]
    assert "FAIL pod-3: pod-3 runs on k8s-node1 (15 attempts)" in text
    assert "  spec.nodeName: expected k8s-node1, got k8s-node2" in text
    assert "  | ... 8 earlier lines" in text and "  | line 19" in text and "  | line 7" not in text
    assert "  hint: the worker's hostname must be exactly k8s-node1" in text
    assert "ERROR lab-dns: CoreDNS (3 attempts)" in text and "  hint: is the lab up? `labctl status`" in text
    assert "SKIP pod-4: the lab has no node named k8s-node1" in text
    assert lines[-1] == "1 passed, 1 failed, 1 errors, 1 skipped (skips count as passed; --strict fails on them) in 30.5s"


def test_json():
    data = json.loads(render_json(report()))
    assert data["ok"] is False
    assert data["summary"] == {"pass": 1, "fail": 1, "error": 1, "skip": 1, "total": 4}
    assert data["checks"][1]["mismatches"][0]["message"] == "spec.nodeName: expected k8s-node1, got k8s-node2"
    assert data["checks"][1]["evidence"][0]["lines"][-1] == "line 19"


def test_ok_counts_skips_as_fine():
    r = VerifyReport([CheckResult("a", "a", Status.PASS, 0), CheckResult("b", "b", Status.SKIP, 0)], 0)
    assert r.ok


def test_junit():
    xml = render_junit(report())
    assert xml.startswith("<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("4", "1", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["lab-nodes-ready"].find("failure") is None and cases["lab-nodes-ready"].get("time") == "0.120"
    failure = cases["pod-3"].find("failure")
    assert failure.get("message") == "spec.nodeName: expected k8s-node1, got k8s-node2"
    assert "hint: the worker's hostname must be exactly k8s-node1" in failure.text
    assert cases["lab-dns"].find("error").get("message").startswith("get Service kube-system/kube-dns")
    assert cases["pod-4"].find("skipped").get("message") == "the lab has no node named k8s-node1"
    prop = cases["pod-4"].find("properties/property")
    assert prop.get("value") == 'pod-4 <resources> & "limits"'  # escaped and read back intact


def test_strict_counts_a_skip_as_failed_and_says_so():
    r = VerifyReport([CheckResult("a", "a", Status.PASS, 0), CheckResult("b", "b", Status.SKIP, 0, message="no k8s-node1")], 0, strict=True)
    assert not r.ok
    assert render_text(r).splitlines()[-1] == "1 passed, 0 failed, 0 errors, 1 skipped (--strict: skips count as failed) in 0.0s"
    data = json.loads(render_json(r))
    assert data["ok"] is False and data["strict"] is True
    suite = ET.fromstring(render_junit(r)).find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "0")
    failure = {c.get("name"): c for c in suite.findall("testcase")}["b"].find("failure")
    assert failure.get("type") == "CheckSkipped" and failure.get("message") == "skipped under --strict: no k8s-node1"


def test_no_skips_no_note():
    r = VerifyReport([CheckResult("a", "a", Status.PASS, 0)], 0)
    assert render_text(r).splitlines()[-1] == "1 passed, 0 failed, 0 errors, 0 skipped in 0.0s"


def test_a_run_that_could_not_start_has_the_same_shape_with_every_check_an_error():
    from labctl.errors import NotFound
    from labctl.verify.catalogue import select

    checks = select(["pod-1"])
    r = VerifyReport.not_started(checks, NotFound("no kubeconfig at /x/kubeconfig", hint="create the lab first: `labctl up`"))
    data = json.loads(render_json(r))
    normal = json.loads(render_json(report()))
    assert set(data) == set(normal) and set(data["checks"][0]) == set(normal["checks"][0])
    assert data["ok"] is False and data["error"]["error"] == "NotFound" and data["error"]["exit_code"] == 8
    assert [c["id"] for c in data["checks"]] == ["pod-1", "pod-1-localhost", "pod-1-localhost-8000", "pod-1-same-port"]
    assert {c["status"] for c in data["checks"]} == {"error"}
    assert data["checks"][0]["message"] == "verify could not start: no kubeconfig at /x/kubeconfig"
    assert data["checks"][0]["hints"] == ["create the lab first: `labctl up`"]
    suite = ET.fromstring(render_junit(r)).find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("4", "4")
    assert all(c.find("error").get("message").startswith("verify could not start") for c in suite.findall("testcase"))
    assert render_text(r).splitlines()[-1].startswith("0 passed, 0 failed, 4 errors, 0 skipped; verify could not start: no kubeconfig")
