"""The one reading of the hub's offline switches and the one probe of the hub (`workbench.hub`)."""

from __future__ import annotations

import pytest

from workbench.hub import hub_offline, hub_reachable


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                                ("0", False), ("", False), ("false", False), ("off", False)])
def test_offline_switch_is_read_at_each_call_as_huggingface_hub_reads_it(monkeypatch, value, offline):
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub_offline() is offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", value)
    assert hub_offline() is False  # the datasets switch counts only where data asks for it
    assert hub_offline("HF_DATASETS_OFFLINE") is offline


@pytest.mark.timeout(30)
def test_an_unreachable_endpoint_is_found_out_within_the_probe_timeout(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert hub_reachable(timeout=1.0) is False


@pytest.mark.parametrize("answers", [True, False])
def test_the_app_probes_the_hub_once_when_no_mode_is_set_and_says_which(monkeypatch, answers):
    import workbench.commands.app as app_command

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(app_command, "hub_reachable", lambda: answers)
    line = app_command.hub_mode()
    assert line.startswith(f"Hugging Face hub: {'online' if answers else 'offline'}")
    assert hub_offline() is not answers  # written down for every later check of this process
    monkeypatch.setattr(app_command, "hub_reachable", lambda: pytest.fail("probed although the mode was set"))
    for value, mode in (("1", "offline"), ("0", "online")):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert app_command.hub_mode().startswith(f"Hugging Face hub: {mode} (HF_HUB_OFFLINE={value} as set)")


def test_the_app_page_says_which_hub_mode_it_is_in_in_both_languages(monkeypatch, tmp_path):
    from workbench.app import HUB_OFFLINE, HUB_ONLINE, build_app
    from workbench.app.i18n import build_i18n

    korean = build_i18n().translations_dict["ko"]
    for value, line in (("0", HUB_ONLINE), ("1", HUB_OFFLINE)):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        demo = build_app(runs_dir=tmp_path / "runs", exports_dir=tmp_path / "exports")
        (shown,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "kd-hub"]
        assert f'"key": "{line}"' in shown.value  # the browser shows the English or the Korean of this key
        assert korean[line].startswith("Hugging Face hub: " + ("온라인" if value == "0" else "오프라인"))
