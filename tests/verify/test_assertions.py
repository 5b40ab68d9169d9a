"""Partial-object assertions: subset matching, unordered lists, paths, negation."""

from labctl.verify.assertions import Matches, OneOf, Present, Quantity, Satisfies, get_path, match, must_not_match
from labctl.verify.model import MISSING

POD = {
    "metadata": {"name": "pod-3", "labels": {"type": "web", "lo": "dev"}},
    "spec": {
        "nodeName": "k8s-node2",
        "containers": [
            {"name": "container", "image": "kubetm/init", "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1024Mi"}}},
            {"name": "sidecar", "image": "kubetm/p8000"},
        ],
    },
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
    },
}


def test_subset_match_passes_and_ignores_extra_keys():
    assert match({"metadata": {"labels": {"type": "web"}}, "status": {"phase": "Running"}}, POD) == []


def test_mismatch_is_reported_by_path_with_expected_and_got():
    [m] = match({"spec": {"nodeName": "k8s-node1"}}, POD)
    assert m.path == "spec.nodeName"
    assert str(m) == "spec.nodeName: expected k8s-node1, got k8s-node2"


def test_missing_key_says_missing():
    [m] = match({"spec": {"nodeSelector": {"kubernetes.io/hostname": "k8s-node1"}}}, POD)
    assert m.path == "spec.nodeSelector"
    assert m.got is MISSING
    assert "got <missing>" in str(m)


def test_lists_match_as_unordered_subsets():
    want = {"spec": {"containers": [{"name": "sidecar"}, {"name": "container", "image": "kubetm/init"}]}}
    assert match(want, POD) == []


def test_named_list_item_reports_the_deep_path():
    [m] = match({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, POD)
    assert m.path == "status.conditions[type=Ready].status"
    assert (m.expected, m.got) == ("True", "False")


def test_absent_named_item_is_missing():
    [m] = match({"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}, POD)
    assert m.path == "status.conditions[type=PodScheduled]"
    assert m.got is MISSING


def test_unlabelled_item_that_matches_nothing():
    [m] = match({"items": [3]}, {"items": [1, 2]})
    assert m.path == "items[]" and m.got == [1, 2]


def test_each_expected_item_needs_its_own_actual_item():
    assert match({"a": [{"x": 1}, {"x": 1}]}, {"a": [{"x": 1, "y": 2}]}) != []
    assert match({"a": [{"x": 1}, {"x": 1}]}, {"a": [{"x": 1, "y": 2}, {"x": 1}]}) == []


def test_quantity_compares_values_not_spellings():
    want = {"spec": {"containers": [{"name": "container", "resources": {"requests": {"memory": Quantity("1Gi")}, "limits": {"memory": Quantity("1Gi")}}}]}}
    assert match(want, POD) == []
    [m] = match({"spec": {"containers": [{"name": "container", "resources": {"requests": {"memory": Quantity("512Mi")}}}]}}, POD)
    assert m.path == "spec.containers[name=container].resources.requests.memory"
    assert str(m) == "spec.containers[name=container].resources.requests.memory: expected 512Mi, got 1Gi"


def test_predicates():
    assert match({"status": {"phase": OneOf(("Running", "Succeeded"))}}, POD) == []
    assert match({"metadata": {"name": Matches(r"^pod-\d$")}}, POD) == []
    assert match({"spec": {"nodeName": Present()}}, POD) == []
    assert match({"spec": {"priority": Present()}}, POD)[0].path == "spec.priority"
    assert match({"x": Satisfies(lambda v: v > 3, "more than 3")}, {"x": 2})[0].expected == "more than 3"
    assert match({"x": Satisfies(lambda v: v > 3, "more than 3")}, {"x": "a"}) != []


def test_type_mismatches():
    assert str(match({"spec": {"nodeName": "x"}}, {"spec": "oops"})[0]) == "spec: expected an object, got oops"
    assert match({"a": [1]}, {"a": "x"})[0].expected == "a list"


def test_negative_assertion():
    nat = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.2.15"}]}}
    node_bad = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.2.15"}, {"type": "Hostname", "address": "k8s-node1"}]}}
    node_good = {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.56.31"}]}}
    assert must_not_match(nat, node_good, "nodes[k8s-node1]") == []
    [m] = must_not_match(nat, node_bad, "nodes[k8s-node1]")
    assert m.negated
    assert str(m) == "nodes[k8s-node1].status.addresses[type=InternalIP].address: expected anything but 10.0.2.15, got 10.0.2.15"
    [fork] = must_not_match({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 2, "d": 3}})
    assert fork.path == "a" and fork.negated


def test_get_path():
    assert get_path(POD, "spec.nodeName") == "k8s-node2"
    assert get_path(POD, "spec.nope.deeper", None) is None
