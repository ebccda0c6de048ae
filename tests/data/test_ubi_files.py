"""The UBI files of ``service.ubi_log_path``: every worker's, rotated backups included, whatever the name."""

from __future__ import annotations

from search_rerank.data.co_interest import ubi_files


def touch(folder, *names):
    for name in names:
        (folder / name).write_text("")


def test_every_workers_file_and_its_backups_are_found_for_a_path_with_a_suffix(tmp_path):
    touch(tmp_path, "ubi.11.jsonl", "ubi.12.jsonl", "ubi.11.jsonl.1", "other.11.jsonl", "ubi.jsonl.txt")
    assert [p.name for p in ubi_files(tmp_path / "ubi.jsonl")] == ["ubi.11.jsonl", "ubi.11.jsonl.1", "ubi.12.jsonl"]


def test_every_workers_file_and_its_backups_are_found_for_a_path_without_a_suffix(tmp_path):
    touch(tmp_path, "ubi.11", "ubi.11.1", "ubi.12", "ubiquity.11")
    assert [p.name for p in ubi_files(tmp_path / "ubi")] == ["ubi.11", "ubi.11.1", "ubi.12"]


def test_a_name_with_pattern_characters_is_matched_as_written(tmp_path):
    touch(tmp_path, "ubi[1].11.jsonl", "ubi1.11.jsonl")
    assert [p.name for p in ubi_files(tmp_path / "ubi[1].jsonl")] == ["ubi[1].11.jsonl"]
