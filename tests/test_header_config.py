"""CLI flags and config files for the header options."""
from __future__ import annotations

import argparse
import json

import pytest

from pixelscrub.errors import ScrubError
from pixelscrub.header import DeidOptions, SafePrivate
from pixelscrub.header.config import FLAGS, add_cli_arguments, load_config, options_from_cli


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return parser.parse_args(argv)


def test_every_flag_sets_its_option(monkeypatch):
    monkeypatch.delenv("PIXELSCRUB_KEY", raising=False)
    for name in FLAGS:
        opts, key = options_from_cli(_parse(["--" + name.replace("_", "-")]))
        assert getattr(opts, name) is True and key is None
        assert sum(getattr(opts, n) for n in FLAGS) == 1


def test_defaults_are_the_basic_profile(monkeypatch):
    monkeypatch.delenv("PIXELSCRUB_KEY", raising=False)
    assert options_from_cli(_parse([])) == (DeidOptions(), None)


def test_key_from_file_or_env(tmp_path, monkeypatch):
    path = tmp_path / "key"
    path.write_text("0123456789abcdefXYZ\n")
    assert options_from_cli(_parse(["--key-file", str(path)]))[1] == b"0123456789abcdefXYZ"
    monkeypatch.setenv("PIXELSCRUB_KEY", "from-the-environment-123")
    assert options_from_cli(_parse([]))[1] == b"from-the-environment-123"


def test_toml_and_json_config(tmp_path, monkeypatch):
    monkeypatch.delenv("PIXELSCRUB_KEY", raising=False)
    toml = tmp_path / "deid.toml"
    toml.write_text('[deid]\nretain-long-modified-dates = true\nclean_descriptors = true\n'
                    'safe_private = [{creator = "ACME", group = "0009", element = "02"}]\n')
    opts, _ = options_from_cli(_parse(["--deid-config", str(toml), "--retain-uids"]))
    assert opts.retain_long_modified_dates and opts.clean_descriptors and opts.retain_uids
    assert opts.safe_private == (SafePrivate("ACME", 0x0009, 0x02),)
    js = tmp_path / "deid.json"
    js.write_text(json.dumps({"retain_device_id": True, "reid_map": "/tmp/x.csv"}))
    assert load_config(str(js)) == {"retain_device_id": True, "reid_map": "/tmp/x.csv"}


@pytest.mark.parametrize("content", [
    '{"retain_uid": true}',                                     # misspelt
    '{"retain_uids": "yes"}',                                   # not a boolean
    '{"retain_long_full_dates": true, "retain_long_modified_dates": true}',
    '{"safe_private": [["ACME", "0008", "01"]]}',               # even group
    'not json',
])
def test_bad_config_is_an_error(tmp_path, content):
    path = tmp_path / "deid.json"
    path.write_text(content)
    with pytest.raises(ScrubError):
        options_from_cli(_parse(["--deid-config", str(path)]))
