from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sylkbox.cli import apply_overrides, main
from sylkbox.config import Config, ConfigError, load_config, parse_config


def test_defaults() -> None:
    config = Config()
    assert config.sip.udp_port == 5060
    assert config.sip.tls_port == 5061
    assert config.server.data_dir == "./var"
    assert config.media.port_bounds == (50000, 50999)


def test_every_problem_names_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "sip": {"udp_port": 70000, "bind": "nowhere", "bogus": 1},
                "media": {"codecs": ["G729"], "port_range": "9-1"},
                "server": {"log_level": "loud"},
                "conference": {"max_participants": "ten"},
                "rooms": {"not-a-room": {}, "a@b": {"persistent": "yes"}},
                "extra": {},
            }
        )
    keys = {key for key, _ in info.value.problems}
    assert keys == {
        "sip.udp_port",
        "sip.bind",
        "sip.bogus",
        "media.codecs",
        "media.port_range",
        "server.log_level",
        "conference.max_participants",
        "rooms.not-a-room",
        'rooms."a@b".persistent',
        "extra",
    }
    messages = dict(info.value.problems)
    assert messages["sip.bogus"] == "unknown key"
    assert "port number" in messages["sip.udp_port"]


def test_room_overrides_inherit_conference_defaults() -> None:
    config = parse_config(
        {
            "conference": {"max_participants": 20, "deny": ["evil.example"]},
            "rooms": {"Board@Office.example": {"persistent": True}},
        }
    )
    board = config.conference.policy_for("board@office.example")
    assert board.persistent is True
    assert board.max_participants == 20
    assert board.deny == ("evil.example",)
    other = config.conference.policy_for("other@office.example")
    assert other.persistent is False


def test_load_reports_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[sip\nudp_port = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0][0] == "(file)"


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "data_dir": None,
        "log_level": None,
        "bind": None,
        "sip_port": None,
        "sip_tls_port": None,
        "web_port": None,
        "no_mdns": False,
    }
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[sip]\nudp_port = 5070\ntcp_port = 5070\nbind = "127.0.0.1"\n')
    config = apply_overrides(load_config(path), _args(sip_port=5080, no_mdns=True))
    assert config.sip.udp_port == 5080 and config.sip.tcp_port == 5080
    assert config.sip.bind == "127.0.0.1"
    assert config.mdns.enabled is False


def test_cli_override_is_validated() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), _args(sip_port=99999))
    assert info.value.problems[0][0] == "sip.udp_port"


def test_config_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[sip]\ndomains = ["office.example"]\n')
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip]\nudp_port = -1\nfoo = 2\n")
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "sip.udp_port:" in err and "sip.foo: unknown key" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("sylkbox 0.1.0")


def test_codec_defaults_and_order() -> None:
    media = Config().media
    assert media.codecs == ("opus", "G722", "PCMU", "PCMA")
    assert media.sample_rate == 16000
    config = parse_config({"media": {"codecs": ["PCMA", "G722"], "sample_rate": 48000}})
    assert config.media.codecs == ("PCMA", "G722")
    assert config.media.sample_rate == 48000
    with pytest.raises(ConfigError) as info:
        parse_config({"media": {"codecs": ["opus", "G729"], "sample_rate": 44100}})
    assert {key for key, _ in info.value.problems} == {"media.codecs", "media.sample_rate"}


def test_room_sample_rate_override() -> None:
    config = parse_config(
        {
            "media": {"sample_rate": 16000},
            "rooms": {"music@example.com": {"sample_rate": 48000}, "talk@example.com": {}},
        }
    )
    rooms = config.conference
    assert rooms.policy_for("music@example.com").mixing_rate(config.media) == 48000
    assert rooms.policy_for("talk@example.com").mixing_rate(config.media) == 16000
    assert rooms.policy_for("other@example.com").mixing_rate(config.media) == 16000
    wide = parse_config({"conference": {"sample_rate": 48000}})
    assert wide.conference.policy_for("x@y").mixing_rate(wide.media) == 48000
    with pytest.raises(ConfigError) as info:
        parse_config({"rooms": {"a@b": {"sample_rate": 8000}}})
    assert info.value.problems[0][0] == 'rooms."a@b".sample_rate'
