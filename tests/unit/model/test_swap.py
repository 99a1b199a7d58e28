"""A retrained model replaces the one in use whole (`finpulse model train`'s staging and swap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finpulse.errors import ConfigError
from model.cli import staging_dir, swap_in


def _model(path: Path, version: str, *files: str) -> None:
    path.mkdir(parents=True)
    for name in ("model.safetensors", "config.json", *files):
        (path / name).write_text(version)


def _read(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_the_new_model_replaces_the_old_whole_and_nothing_is_left_behind(tmp_path: Path) -> None:
    out = tmp_path / "model"
    _model(out, "old", "card.json", "model.int8.onnx")
    (tmp_path / ".model.new").mkdir()  # a run stopped midway
    (tmp_path / ".model.new" / "junk").write_text("x")
    staged = staging_dir(out)
    assert staged == tmp_path / ".model.new"
    assert not staged.exists()
    _model(staged, "new", "card.json")
    assert _read(out)["config.json"] == "old"  # in use meanwhile, as it was
    swap_in(staged, out)
    assert _read(out) == {"card.json": "new", "config.json": "new", "model.safetensors": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_first_model_is_moved_into_place(tmp_path: Path) -> None:
    out = tmp_path / "data" / "model"
    staged = staging_dir(out)
    _model(staged, "new")
    swap_in(staged, out)
    assert _read(out) == {"config.json": "new", "model.safetensors": "new"}


def test_a_directory_that_cannot_be_renamed_gets_its_files_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A volume's mount point: rename fails with EBUSY."""
    out = tmp_path / "model"
    _model(out, "old", "model.int8.onnx")
    staged = staging_dir(out)
    _model(staged, "new")
    rename = Path.rename

    def busy(self: Path, target: Path) -> Path:
        if self == out:
            raise OSError(16, "Device or resource busy")
        return rename(self, target)

    (out / "notes.txt").write_text("mine")  # no model file: kept
    monkeypatch.setattr(Path, "rename", busy)
    swap_in(staged, out)
    assert _read(out) == {"config.json": "new", "model.safetensors": "new", "notes.txt": "mine"}  # int8: gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("where", ["root", "files"])
def test_a_folder_that_is_no_model_s_is_refused_before_training(tmp_path: Path, where: str) -> None:
    """`--out .` in a home folder, `--out /`: the swap would replace the whole folder."""
    out = Path("/") if where == "root" else tmp_path
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="folder"):
        staging_dir(out)
    assert (tmp_path / "thesis.tex").exists()


def test_a_model_folder_that_is_a_link_is_replaced_as_a_link_its_target_kept(tmp_path: Path) -> None:
    """`model -> releases/v3`: the new model takes the link's place; v3 stays as it was."""
    v3 = tmp_path / "releases" / "v3"
    _model(v3, "v3")
    out = tmp_path / "model"
    out.symlink_to(v3, target_is_directory=True)
    staged = staging_dir(out)
    _model(staged, "new")
    swap_in(staged, out)
    assert not out.is_symlink()
    assert _read(out)["config.json"] == "new"
    assert _read(v3)["config.json"] == "v3"
