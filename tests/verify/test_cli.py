"""`labctl verify` end to end: the CLI, the lab's kubeconfig (fake 1.27 API server),
the lab's SSH sessions through `vagrant ssh-config` (the vagrant stand-in) to a real
sshd, and real servers on loopback."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from labctl.verify.catalogue import CHECKS
from labctl.cli import main
from labctl.errors import ExitCode
from tests.verify import objects as o

pytestmark = pytest.mark.slow


@pytest.fixture
def cli_lab(lab, fake_apiserver, fake_vagrant, sshd_factory):
    """The healthy lab model behind a lab folder: lab.yaml, kubeconfig, running machines."""
    lab_dir = fake_apiserver.lab_dir
    (lab_dir / "lab.yaml").write_text(yaml.safe_dump(lab.spec.to_dict(), sort_keys=False))
    names = [n.name for n in lab.spec.nodes]
    fake_vagrant.lab(lab_dir, names)
    host = sshd_factory()
    for name in names:
        fake_vagrant.set_target(host.target(name))
    subprocess.run(["vagrant", "up", "--no-provision"], cwd=lab_dir, check=True, capture_output=True)
    lab.dir = lab_dir
    lab.sshd = host
    return lab


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_all_pass_exit_0_with_a_table(cli_lab, capsys):
    cli_lab.publish()
    rc, out, err = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "--all", "--deadline", "3")
    assert rc == 0, out + err
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "TIME", "TITLE"]
    assert [line.split()[:2] for line in lines[1 : 1 + len(CHECKS)]] == [[c.id, "PASS"] for c in CHECKS]
    assert lines[-1].startswith(f"{len(CHECKS)} passed, 0 failed, 0 errors, 0 skipped in ")
    assert cli_lab.sshd.accepted_connections() >= 1  # pod-1, svc-clusterip, lab-dns went over SSH


def test_a_failed_check_exits_1_and_prints_its_evidence_and_hints(cli_lab, capsys):
    cli_lab.put(o.pod(o.manifest("pod-3"), phase="Pending"))
    cli_lab.put(o.event("Pod", "pod-3", "FailedScheduling", "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."))
    cli_lab.publish()
    rc, out, err = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "pod-3", "pod-4", "--deadline", "0.01")
    assert rc == int(ExitCode.CHECKS_FAILED) == 1
    assert "pod-3  FAIL" in out and "pod-4  PASS" in out
    assert "FAIL pod-3: pod-3 runs on k8s-node1 (nodeSelector kubernetes.io/hostname) (" in out  # (N attempts)
    assert "  spec.nodeName: expected k8s-node1, got <missing>" in out
    assert "  events of Pod default/pod-3:" in out
    assert "  hint: the worker's hostname must be exactly k8s-node1" in out
    assert out.strip().endswith("s") and "1 passed, 1 failed, 0 errors, 0 skipped" in out


def test_json_report_shape(cli_lab, capsys):
    cli_lab.obj("Service", "svc-loadbalancer")["status"] = {"loadBalancer": {}}
    cli_lab.publish()
    rc, out, _ = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "svc-loadbalancer", "pod-4", "--json", "--deadline", "0.01")
    assert rc == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["summary"] == {"pass": 2, "fail": 1, "error": 0, "skip": 0, "total": 3}
    # catalogue order; the svc-loadbalancer group includes its NodePort check, which passes without MetalLB
    assert [c["id"] for c in report["checks"]] == ["pod-4", "svc-loadbalancer", "svc-loadbalancer-nodeport"]
    assert set(report) == {"ok", "strict", "duration", "summary", "error", "checks"} and report["error"] is None
    lb = report["checks"][1]
    assert set(lb) == {"id", "title", "status", "duration", "attempts", "message", "mismatches", "evidence", "hints"}
    assert lb["status"] == "fail"
    assert lb["mismatches"][0] == {
        "path": "Service svc-loadbalancer.status.loadBalancer.ingress", "expected": "an address (EXTERNAL-IP)",
        "got": "<pending>", "negated": False,
        "message": "Service svc-loadbalancer.status.loadBalancer.ingress: expected an address (EXTERNAL-IP), got <pending>"}
    assert lb["hints"][0].startswith("no address from MetalLB")


def test_junit_file_parses_and_counts_failures(cli_lab, capsys, tmp_path):
    cli_lab.stop("svc-nodeport@k8s-node2")
    cli_lab.drop("Pod", "pod-2")
    cli_lab.publish()
    junit = tmp_path / "reports" / "verify.xml"
    junit.parent.mkdir()
    rc, out, _ = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "--all", "--junit", str(junit), "--deadline", "0.01")
    assert rc == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (str(len(CHECKS)), "2", "0", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [c.id for c in CHECKS]
    failed = {name for name, c in cases.items() if c.find("failure") is not None}
    assert failed == {"svc-nodeport", "pod-2-selector"}
    assert cases["pod-2-selector"].find("failure").get("message") == "Pod default/pod-2: not found"
    assert "hint: create it: `labctl apply pod-2`" in cases["pod-2-selector"].find("failure").text
    assert cases["svc-nodeport"].get("classname") == "labctl.verify.svc"
    assert "PASS" in out  # the table is still printed


def test_group_selector_runs_the_group(cli_lab, capsys):
    cli_lab.publish()
    rc, out, _ = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "pod-1", "--json", "--deadline", "3")
    assert rc == 0
    assert [c["id"] for c in json.loads(out)["checks"]] == ["pod-1", "pod-1-localhost", "pod-1-localhost-8000", "pod-1-same-port"]


def test_no_kubeconfig_still_writes_the_report_and_exits_not_found(tmp_path, capsys):
    junit = tmp_path / "verify.xml"
    rc, out, err = run_cli(capsys, "-C", str(tmp_path), "verify", "lab-nodes-ready", "--junit", str(junit))
    assert rc == int(ExitCode.NOT_FOUND)
    assert f"no kubeconfig at {tmp_path / 'kubeconfig'}" in err and "labctl up" in err
    assert "lab-nodes-ready  ERROR" in out
    [case] = ET.parse(junit).getroot().find("testsuite").findall("testcase")
    assert case.get("name") == "lab-nodes-ready"
    assert case.find("error").get("message") == f"verify could not start: no kubeconfig at {tmp_path / 'kubeconfig'}"


def test_no_kubeconfig_json_has_the_report_shape(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "-C", str(tmp_path / "no-such-lab"), "verify", "pod-1", "--json")
    assert rc == int(ExitCode.NOT_FOUND)
    report = json.loads(out)  # exactly one JSON object on stdout
    assert set(report) == {"ok", "strict", "duration", "summary", "error", "checks"}
    assert report["ok"] is False and report["error"]["error"] == "NotFound"
    assert report["summary"] == {"pass": 0, "fail": 0, "error": 4, "skip": 0, "total": 4}
    assert all(c["status"] == "error" and c["message"].startswith("verify could not start: no kubeconfig") for c in report["checks"])
    assert err.startswith("labctl: error: no kubeconfig at")


def test_invalid_lab_yaml_still_writes_the_report(tmp_path, capsys):
    (tmp_path / "lab.yaml").write_text("nodes: [unclosed\n")
    junit = tmp_path / "out" / "verify.xml"
    junit.parent.mkdir()
    rc, out, _ = run_cli(capsys, "-C", str(tmp_path), "verify", "--all", "--json", "--junit", str(junit))
    assert rc == int(ExitCode.SPEC_INVALID)
    assert json.loads(out)["error"]["error"] == "SpecError"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("errors") == str(len(CHECKS))


def test_skips_count_as_passed_unless_strict(cli_lab, capsys):
    """A lab without k8s-node1: pod-3 and pod-4 are skipped."""
    spec = cli_lab.spec.to_dict()
    for node in spec["nodes"]:
        if node["name"] == "k8s-node1":
            node["name"] = "k8s-node3"
    (cli_lab.dir / "lab.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    cli_lab.publish()
    rc, out, _ = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "pod-3", "pod-4", "--deadline", "0.01")
    assert rc == 0
    assert out.splitlines()[-1].startswith("0 passed, 0 failed, 0 errors, 2 skipped (skips count as passed; --strict fails on them) in ")
    rc, out, _ = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "pod-3", "pod-4", "--strict", "--deadline", "0.01")
    assert rc == int(ExitCode.CHECKS_FAILED) == 1
    assert out.splitlines()[-1].startswith("0 passed, 0 failed, 0 errors, 2 skipped (--strict: skips count as failed) in ")


def test_all_is_strict_by_default(cli_lab, capsys):
    from labctl.verify import verify

    cli_lab.publish()
    assert verify(cli_lab.dir, all_checks=True, deadline=0.01).strict is True
    assert verify(cli_lab.dir, ["pod-3"], deadline=0.01).strict is False
    assert verify(cli_lab.dir, all_checks=True, deadline=0.01, strict=False).strict is False


def test_api_down_is_an_error_result(cli_lab, capsys):
    cli_lab.fake.stop()
    rc, out, _ = run_cli(capsys, "-C", str(cli_lab.dir), "verify", "lab-nodes-ready", "--json", "--deadline", "0.01")
    assert rc == 1
    [check] = json.loads(out)["checks"]
    assert check["status"] == "error"
    assert "cannot reach the Kubernetes API" in check["message"]
    assert check["hints"][0] == "is the lab up? `labctl status`"


def test_unknown_check_is_a_usage_error_listing_the_ids(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "-C", str(tmp_path), "verify", "pod-9", "pod-3")
    assert rc == int(ExitCode.USAGE) == 2
    assert "unknown check 'pod-9'" in err
    assert "valid checks: " + ", ".join(c.id for c in CHECKS) in err


def test_unknown_check_as_json_is_the_report_shape_with_the_error(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "-C", str(tmp_path), "verify", "nope", "--json")
    assert rc == 2
    report = json.loads(out)
    assert set(report) == {"ok", "strict", "duration", "summary", "error", "checks"}
    assert report["ok"] is False and report["checks"] == [] and report["summary"]["total"] == 0
    assert report["error"]["error"] == "UsageError" and "pod-3" in report["error"]["hint"]
    assert err.splitlines()[0] == "labctl: error: unknown check 'nope'"
    assert list(tmp_path.iterdir()) == []


def test_nothing_named_is_a_usage_error_in_one_full_sentence(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "-C", str(tmp_path), "verify")
    assert rc == 2 and out == ""
    first, hint = err.splitlines()
    assert first == ("labctl: error: no check chosen: name checks or groups (e.g. `labctl verify pod-1 svc-nodeport`), "
                     "or run them all with `labctl verify --all`")
    assert hint.startswith("hint: the checks are lab-nodes-ready, ") and hint.endswith("(a group such as `pod-1` or `lab` runs pod-1-* or lab-*)")
    rc, _, err = run_cli(capsys, "-C", str(tmp_path), "verify", "--all", "pod-3")
    assert rc == 2 and "not both" in err
    assert list(tmp_path.iterdir()) == []
