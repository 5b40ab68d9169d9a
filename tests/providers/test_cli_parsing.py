"""Parsers against recorded output of real Vagrant (tests/fixtures/vagrant/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.providers.vagrant import parse as vagrant_cli
from labctl.providers.vagrant.parse import MachineState

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "vagrant"


def fixture(name: str) -> str:
    return (FIX / name).read_text()


def test_parse_line_unescapes_commas_and_newlines():
    line = vagrant_cli.parse_line("1424098924,web,state-human-long,a%!(VAGRANT_COMMA) b\\nc,second")
    assert line == vagrant_cli.MRLine(1424098924, "web", "state-human-long", ("a, b\nc", "second"))


@pytest.mark.parametrize("text", ["", "Host default", "/usr/bin/vagrant:25:in `load'", "abc,def,ghi"])
def test_parse_line_ignores_what_is_not_machine_readable(text):
    assert vagrant_cli.parse_line(text) is None


def test_status_of_real_libvirt_output_recorded_here():
    states = vagrant_cli.parse_status(fixture("status-two-not-created-libvirt.out"))
    assert states == {
        "k8s-master": MachineState("k8s-master", "not_created", "libvirt"),
        "k8s-node1": MachineState("k8s-node1", "not_created", "libvirt"),
    }
    assert list(states) == ["k8s-master", "k8s-node1"]


def test_status_of_real_virtualbox_output():
    states = vagrant_cli.parse_status(fixture("status-virtualbox-running-and-not-created.out"))
    assert states["web"] == MachineState("web", "running", "virtualbox")
    assert states["db"] == MachineState("db", "not_created", "virtualbox")


def test_status_maps_libvirt_shutoff_to_poweroff():
    text = "1,n1,provider-name,libvirt\n1,n1,state,shutoff\n1,n2,provider-name,virtualbox\n1,n2,state,saved\n"
    states = vagrant_cli.parse_status(text)
    assert states["n1"].state == "poweroff"
    assert states["n2"].state == "saved"


@pytest.mark.parametrize(
    "name, klass, words",
    [
        ("status-machine-not-found", "Vagrant::Errors::MachineNotFound", "'nosuch' was not found"),
        ("status-no-environment", "Vagrant::Errors::NoEnvironmentError", "Or,\nget an ID"),
        ("status-virtualbox-not-usable", "Vagrant::Errors::ProviderNotUsable", "VirtualBox, and requires"),
        ("ssh-config-not-ready", "Vagrant::Errors::SSHNotReady", "not yet ready for SSH"),
    ],
)
def test_error_exit_of_real_failures(name, klass, words):
    assert (FIX / f"{name}.rc").read_text().strip() == "1"
    found = vagrant_cli.error_exit(fixture(f"{name}.out"))
    assert found is not None
    assert found[0] == klass
    assert words in found[1]
    assert vagrant_cli.parse_status(fixture(f"{name}.out")) == {}


def test_human_lines_give_the_message_once_with_its_class():
    lines = vagrant_cli.human_lines(fixture("status-machine-not-found.out"))
    assert lines == [
        "The machine with the name 'nosuch' was not found configured for",
        "this Vagrant environment.",
        "error-exit: Vagrant::Errors::MachineNotFound",
    ]


def test_human_lines_keep_foreign_lines_and_mark_records():
    text = "1,k8s-node1,action,halt,start\nruby: warning: something\n1,k8s-node1,ui,info,==> k8s-node1: ok\n"
    assert vagrant_cli.human_lines(text) == ["[k8s-node1 action halt start]", "ruby: warning: something",
                                             "==> k8s-node1: ok"]


def test_ssh_config_of_real_virtualbox_output():
    conf = vagrant_cli.parse_ssh_config(fixture("ssh-config-virtualbox.out"))
    assert (conf.host_alias, conf.hostname, conf.port, conf.user) == ("default", "127.0.0.1", 2200, "vagrant")
    assert conf.identity_files == ("/home/pablo/vagrant-vm/.vagrant/machines/default/virtualbox/private_key",)
    assert conf.options["stricthostkeychecking"] == "no"


def test_ssh_config_strips_quotes_and_keeps_every_key_in_order():
    conf = vagrant_cli.parse_ssh_config(fixture("ssh-config-quoted-identity.out"))
    assert conf.port == 2201
    assert conf.identity_files == (
        "/home/kim/My Labs/k8s/.vagrant/machines/k8s-node1/virtualbox/private_key",
        "/home/kim/.vagrant.d/insecure_private_key",
    )


def test_ssh_config_reads_only_the_first_host_block():
    text = fixture("ssh-config-virtualbox.out") + "Host other\n  HostName 10.0.0.9\n  Port 22\n  User x\n"
    assert vagrant_cli.parse_ssh_config(text).hostname == "127.0.0.1"


@pytest.mark.parametrize("text", ["", fixture("ssh-config-not-ready.out"), "Host x\n  HostName h\n  User u\n",
                                  "Host x\n  HostName h\n  User u\n  Port twenty\n"])
def test_ssh_config_without_a_usable_block_is_an_error(text):
    with pytest.raises(ValueError):
        vagrant_cli.parse_ssh_config(text)


def test_snapshot_list_with_snapshots_and_without():
    assert vagrant_cli.parse_snapshot_list(fixture("snapshot-list-two-machines.out")) == {
        "k8s-master": ["base", "after-pod-3,v2"],
        "k8s-node1": [],
    }


def test_snapshot_list_of_real_not_created_machines():
    assert vagrant_cli.parse_snapshot_list(fixture("snapshot-list-not-created.out")) == {
        "k8s-master": [],
        "k8s-node1": [],
    }


HINTS = {
    "status-virtualbox-not-usable": "install VirtualBox",
    "status-no-environment": "labctl render",
    "status-machine-not-found": "labctl render",
    "ssh-config-not-ready": "labctl up",
}


@pytest.mark.parametrize("name, words", sorted(HINTS.items()))
def test_hints_for_real_failures(name, words):
    text = "\n".join(vagrant_cli.human_lines(fixture(f"{name}.out")))
    hint = vagrant_cli.hint_for(text)
    assert hint is not None and words in hint


@pytest.mark.parametrize(
    "message, words",
    [
        ("The IP address configured for the host-only network is not within the\nallowed ranges.", "networks.conf"),
        ("VBoxManage: error: VT-x is not available (VERR_VMX_NO_VMX)", "BIOS"),
        ("VT-x is being used by another hypervisor (VERR_VMX_IN_VMX_ROOT_MODE)", "KVM"),
        ("The box 'bento/ubuntu-22.04' could not be found or\ncould not be accessed in the remote catalog.", "box add"),
        ("Timed out while waiting for the machine to boot.", "console"),
        ("something nobody has seen before", None),
    ],
)
def test_hints_for_known_virtualbox_messages(message, words):
    hint = vagrant_cli.hint_for(message)
    if words is None:
        assert hint is None
    else:
        assert hint is not None and words in hint
