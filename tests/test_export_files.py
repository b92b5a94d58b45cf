"""Chat exports: unguessable names, only our own CSVs served, expired ones gone."""

from __future__ import annotations

import os
import time

from segmentation import export_files


def test_new_exports_have_unguessable_distinct_names(tmp_path):
    names = {export_files.new_export(tmp_path).name for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert export_files.EXPORT_NAME.match(name)
        assert len(name) == len("x" * 32 + ".csv")


def test_only_existing_unexpired_csvs_in_the_folder_are_served(tmp_path, monkeypatch):
    monkeypatch.setenv("SI_EXPORT_TTL_SECONDS", "60")
    path = export_files.new_export(tmp_path)
    assert export_files.saved_export(path.name, tmp_path) is None  # not written yet
    path.write_text("user_id\nu1\n")
    assert export_files.saved_export(path.name, tmp_path) == path.resolve()
    outside = tmp_path.parent / path.name
    outside.write_text("secret")
    for name in ("../" + path.name, path.name[:-4] + ".png", "short.csv", path.name + "x"):
        assert export_files.saved_export(name, tmp_path) is None, name
    old = time.time() - 120
    os.utime(path, (old, old))
    assert export_files.saved_export(path.name, tmp_path) is None
    assert not path.exists(), "an expired export is deleted when asked for"


def test_expired_exports_are_purged_when_a_new_one_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("SI_EXPORT_TTL_SECONDS", "60")
    old, fresh = tmp_path / ("a" * 32 + ".csv"), tmp_path / ("b" * 32 + ".csv")
    old.write_text("x")
    fresh.write_text("y")
    stale = time.time() - 3600
    os.utime(old, (stale, stale))
    export_files.new_export(tmp_path)
    assert not old.exists() and fresh.exists()
