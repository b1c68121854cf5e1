"""The ``[mdns]`` configuration section (sylkbox.config.MdnsConfig) and `sylkbox config check`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sylkbox.cli import main
from sylkbox.config import ConfigError, MdnsConfig, parse_config
from sylkbox.discovery.advertiser import AdvertiserSettings
from sylkbox.discovery.records import Ports


def test_defaults() -> None:
    mdns = parse_config({}).mdns
    assert mdns == MdnsConfig(enabled=True, name="", host_name="", interfaces=(), ipv6=False)


def test_values() -> None:
    config = parse_config({"mdns": {"name": "Büro box", "host_name": "boxy-1",
                                    "interfaces": ["eth0", "wlan0"], "ipv6": True}})
    assert config.mdns.interfaces == ("eth0", "wlan0") and config.mdns.ipv6
    assert config.mdns.name == "Büro box" and config.mdns.host_name == "boxy-1"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"host_name": "box.local"}, "mdns.host_name"),
        ({"host_name": "-box"}, "mdns.host_name"),
        ({"host_name": "x" * 64}, "mdns.host_name"),
        ({"name": "a\nb"}, "mdns.name"),
        ({"name": "x" * 201}, "mdns.name"),
        ({"interfaces": ["eth 0"]}, "mdns.interfaces"),
        ({"interfaces": ["x" * 16]}, "mdns.interfaces"),
        ({"interfaces": "eth0"}, "mdns.interfaces"),
        ({"ipv6": "yes"}, "mdns.ipv6"),
        ({"bogus": 1}, "mdns.bogus"),
    ],
)
def test_problems_name_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"mdns": table})
    assert [k for k, _ in info.value.problems] == [key]


def test_config_check_reports_mdns_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[mdns]\nname = "Box"\nhost_name = "boxy"\ninterfaces = ["eth0"]\n')
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[mdns]\nhost_name = "a.b"\ninterfaces = [""]\n')
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "mdns.host_name: must be a DNS label" in err
    assert "mdns.interfaces: must list interface names" in err


def test_advertiser_settings_from_config() -> None:
    box_id = uuid.uuid4()
    config = parse_config({
        "server": {"name": "Box"},
        "sip": {"bind": "10.0.0.2", "tls_port": 0},
        "web": {"port": 0},
        "mdns": {"host_name": "boxy", "interfaces": ["eth0"]},
        "rooms": {"weekly@box": {"persistent": True}, "other@box": {"max_participants": 2}},
    })
    settings = AdvertiserSettings.from_config(config, box_id)
    assert settings.box.name == "Box" and settings.box.host == "boxy.local."
    assert settings.box.instance_id == box_id
    assert settings.selection.bind == "10.0.0.2" and settings.selection.names == ("eth0",)
    assert settings.persistent_rooms == ("weekly",)
    assert settings.provisional_ports == Ports(sip=(("udp", 5060), ("tcp", 5060)), web=9)
    named = parse_config({"server": {"name": "Box"}, "mdns": {"name": "Focus"}})
    assert AdvertiserSettings.from_config(named, box_id).box.name == "Focus"
