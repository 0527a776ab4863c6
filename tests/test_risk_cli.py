"""``qmtkit risk show|set|halt|resume``: the config file, the halt switch and the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmtkit.cli import main
from qmtkit.risk import RiskLimits
from qmtkit.risk.config import RiskConfig, load_config, save_config
from qmtkit.risk.engine import RiskEntry
from qmtkit.risk.generation import GenerationWatch
from qmtkit.risk.journal import append_entries, journal_path, read_entries, read_switch, switch_path

ACCT = "8886660057"


def risk(home: Path, *args: str) -> int:
    return main(["risk", *args, "--home", str(home)])


def test_set_writes_risk_toml_that_loads_back(tmp_path: Path) -> None:
    assert risk(tmp_path, "set", ACCT, "max_order_volume=5000", "blacklist=600519.SH,000001.SZ",
                "--preset", "conservative") == 0  # fmt: skip
    config = load_config(tmp_path)
    assert config is not None
    lim = config.accounts[ACCT]
    assert lim.preset == "conservative"
    assert lim.max_order_volume == 5000
    assert lim.blacklist == frozenset({"600519.SH", "000001.SZ"})
    assert lim.price_band == 0.05  # from the preset
    assert risk(tmp_path, "set", ACCT, "max_order_volume=off") == 0
    config = load_config(tmp_path)
    assert config is not None and config.accounts[ACCT].max_order_volume == 10_000


def test_set_star_edits_the_default_table(tmp_path: Path) -> None:
    assert risk(tmp_path, "set", "*", "--preset", "regulatory") == 0
    config = load_config(tmp_path)
    assert config is not None and config.default is not None
    assert config.limits_for("anyone") == config.default
    assert config.default.max_actions_per_second == 200


def test_set_refuses_unknown_names_and_bad_values_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert risk(tmp_path, "set", ACCT, "max_order_volum=5") == 2
    assert "unknown risk limit 'max_order_volum'" in capsys.readouterr().err
    assert risk(tmp_path, "set", ACCT, "max_order_volume=-5") == 2
    assert "bad risk limit max_order_volume -5: expected a positive int" in capsys.readouterr().err
    assert load_config(tmp_path) is None


def test_halt_and_resume_flip_the_switch_and_are_journaled(tmp_path: Path) -> None:
    assert risk(tmp_path, "halt", ACCT, "--reason", "fat finger") == 0
    switch = read_switch(switch_path(tmp_path / "risk", ACCT))
    assert switch is not None and switch.halted and switch.reason == "fat finger"
    assert risk(tmp_path, "resume", ACCT) == 0
    switch = read_switch(switch_path(tmp_path / "risk", ACCT))
    assert switch is not None and not switch.halted
    kinds = [(e.kind, e.rule) for e in read_entries(journal_path(tmp_path / "risk", ACCT))]
    assert kinds == [("command", "halt"), ("command", "resume")]


def test_show_prints_limits_state_and_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_config(RiskConfig(accounts={ACCT: RiskLimits(max_order_volume=100)}), tmp_path)
    append_entries(
        journal_path(tmp_path / "risk", ACCT),
        [
            RiskEntry(
                at_ms=1_700_000_000_000,
                account_id=ACCT,
                kind="refused",
                rule="max_order_volume",
                limit="100",
                value="200",
                message="risk:max_order_volume: order volume (600000.SH) 200 is over the limit 100",
            ),
            RiskEntry(
                at_ms=1_700_000_001_000,
                account_id=ACCT,
                kind="state",
                old="active",
                new="halted",
                message="halted by hand",
            ),
        ],
    )
    assert risk(tmp_path, "show", ACCT) == 0
    out = capsys.readouterr().out
    assert "max_order_volume = 100" in out
    assert "state: halted (halted by hand)" in out
    assert "refusals by rule: max_order_volume 1" in out
    assert "2023-11-15 06:13:20.000  refused" in out


def test_show_of_an_account_without_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert risk(tmp_path, "show", ACCT) == 0
    out = capsys.readouterr().out
    assert "limits: none" in out and "state: active" in out


def test_reload_refuses_a_broken_file_naming_the_field_and_leaves_the_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    watch = GenerationWatch.open(tmp_path)
    assert watch is not None
    (tmp_path / "risk.toml").write_text(f'[accounts."{ACCT}"]\nmax_order_volume = "lots"\n')
    assert risk(tmp_path, "reload") == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "risk.toml") in err and "max_order_volume" in err
    assert not watch.moved()
    watch.close()


def test_reload_of_a_good_file_moves_the_mark(tmp_path: Path) -> None:
    watch = GenerationWatch.open(tmp_path)
    assert watch is not None
    (tmp_path / "risk.toml").write_text(f'[accounts."{ACCT}"]\nmax_order_volume = 100\n')
    assert risk(tmp_path, "reload") == 0
    assert watch.moved()
    watch.close()


def test_show_says_a_broken_file_is_refused_and_still_shows_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "risk.toml").write_text(f'[accounts."{ACCT}"]\nmax_order_volume = -5\n')
    assert risk(tmp_path, "halt", ACCT, "--reason", "enough") == 0
    capsys.readouterr()
    assert risk(tmp_path, "show", ACCT) == 0
    out = capsys.readouterr().out
    assert "risk.toml is refused:" in out and "max_order_volume" in out
    assert "halt switch: ON" in out
