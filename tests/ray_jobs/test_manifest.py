"""Manifests: the three formats agree, paths resolve against the data root, and every kind of
malformed manifest is refused with a message that names the line and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DPST_DATA

from ray_jobs.errors import ManifestError
from ray_jobs.manifest import read_manifest
from stylecore.config import TransferConfig

REPOSITORY = Path(__file__).resolve().parents[2]
BASE = TransferConfig(size=64)
ROWS = [
    {"id": "a", "content": "in/a.png", "style": "st/a.png", "content_mask": "seg/a.png", "style_mask": "seg/sa.png"},
    {"id": "b", "content": "/abs/b.png", "style": "st/b.png", "config": {"stage2_iterations": 7, "init": "noise"}},
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def as_tuples(entries):
    return [(e.id, e.content, e.style, e.content_mask, e.style_mask, e.config, e.location) for e in entries]


def test_jsonl_csv_and_parquet_give_the_same_entries(tmp_path):
    jsonl = write_jsonl(tmp_path / "m.jsonl", ROWS)
    csv = write_csv(tmp_path / "m.csv", [
        "id,content,style,content_mask,style_mask,config",
        "a,in/a.png,st/a.png,seg/a.png,seg/sa.png,",
        'b,/abs/b.png,st/b.png,,,"{""stage2_iterations"": 7, ""init"": ""noise""}"'])
    parquet = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist([{**row, "config": json.dumps(row["config"]) if "config" in row else None}
                                         for row in ROWS]), parquet)
    root = tmp_path / "data"
    from_jsonl, from_csv, from_parquet = (read_manifest(path, data_root=root, config=BASE)
                                          for path in (jsonl, csv, parquet))
    a, b = from_jsonl
    assert (a.id, a.content, a.style_mask) == ("a", str(root / "in/a.png"), str(root / "seg/sa.png"))
    assert (b.content, b.content_mask, b.style_mask) == ("/abs/b.png", None, None)
    assert a.config == BASE
    assert b.config == BASE.replace(stage2_iterations=7, init="noise")
    assert (a.location, b.location) == ("line 1", "line 2")
    assert [t[:6] for t in as_tuples(from_csv)] == [t[:6] for t in as_tuples(from_jsonl)]
    assert [t[:6] for t in as_tuples(from_parquet)] == [t[:6] for t in as_tuples(from_jsonl)]
    assert [e.location for e in from_csv] == ["line 2", "line 3"]
    assert [e.location for e in from_parquet] == ["row 1", "row 2"]


@pytest.mark.parametrize("lines, message", [
    (["id,content", "a,x.png"], "line 1: missing required column 'style'"),
    (["id,content,style", "a,x.png,y.png", "b,x.png,y.png", "a,z.png,y.png"],
     "line 4: duplicate id 'a' (first used on line 2)"),
    (["id,content,style,mask_format", "a,x.png,y.png,jpeg"],
     "line 2: mask_format rejected: invalid configuration: mask_format must be one of 'palette', 'ids', 'colours'"),
    (["id,content,style,ignore_label", "a,x.png,y.png,255"],
     "line 2: ignore_label rejected: invalid configuration: ignore_label and label_groups apply to label maps"),
    (["id,content,style,config", 'a,x.png,y.png,"{""size"": 8}"'],
     "line 2: config override rejected: invalid configuration: size x coarse_scale must be at least 32 px"),
    (["id,content,style,config", 'a,x.png,y.png,"{""sise"": 64}"'], "line 2: config override rejected: unknown"),
    (["id,content,style,config", "a,x.png,y.png,{size"], "line 2: config is not valid JSON"),
    (["id,content,style,colour", "a,x.png,y.png,red"], "line 2: unknown column(s) colour"),
    (["id,content,style", "../a,x.png,y.png"], "line 2: id '../a' must be text of letters"),
    (["id,content,style", "a,x.png,y.png,extra"], "line 2: more cells than header columns"),
    (["id,content,style"], "the manifest has no rows"),
])
def test_malformed_csv_is_refused_naming_the_line(tmp_path, lines, message):
    path = write_csv(tmp_path / "bad.csv", lines)
    with pytest.raises(ManifestError) as raised:
        read_manifest(path, data_root=tmp_path, config=BASE)
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(path))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("text, message", [
    ('{"id": "a", "content": "x.png", "style": "y.png"}\n{"id": "b", "content": "x.png"\n',
     "line 2: not valid JSON"),
    ('{"id": "a", "content": "x.png", "style": "y.png"}\n\n{"id": "b", "content": "x.png"}\n',
     "line 3: missing required column 'style'"),
    ('["a", "x.png", "y.png"]\n', "line 1: expected a JSON object, got list"),
    ('{"id": "a", "content": 3, "style": "y.png"}\n', "line 1: content must be a path (text), got int"),
    ('{"id": "a", "content": "x", "style": "y", "config": [1]}\n', "line 1: config must be a JSON object"),
])
def test_malformed_jsonl_is_refused_naming_the_line(tmp_path, text, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(path, data_root=tmp_path, config=BASE)


@pytest.mark.parametrize("name, content, message", [
    ("absent.jsonl", None, "manifest not found"),
    ("binary.csv", b"\xff\xfe\x00id,content", "not UTF-8 text"),
    ("torn.parquet", b"PAR1 not really parquet", "cannot read the manifest"),
    ("rows.txt", b"id,content,style\n", "unknown manifest format '.txt'"),
])
def test_unreadable_manifest_is_refused(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(path, data_root=tmp_path, config=BASE)


def test_parquet_without_a_required_column_is_refused(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"id": ["a"], "content": ["x.png"]}), path)
    with pytest.raises(ManifestError, match="missing required column 'style'"):
        read_manifest(path, data_root=tmp_path, config=BASE)


def test_label_columns_set_the_row_configuration_and_one_mask_is_accepted(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["id,content,style,content_mask,mask_format,ignore_label,label_groups",
                                          "a,x.png,y.png,m.png,ids,255,groups/city.json", "b,x.png,y.png,,,,"])
    labelled, plain = read_manifest(path, data_root=tmp_path / "data", config=BASE)
    assert labelled.config == BASE.replace(mask_format="ids", ignore_label=255,
                                           label_groups=str(tmp_path / "data" / "groups" / "city.json"))
    assert labelled.content_mask == str(tmp_path / "data" / "m.png") and labelled.style_mask is None
    assert plain.config == BASE


def test_missing_photos_are_not_a_manifest_problem(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"id": "a", "content": "nowhere.png", "style": "nowhere.png"}])
    [entry] = read_manifest(path, data_root=tmp_path, config=BASE)
    assert entry.content == str(tmp_path / "nowhere.png")


def test_shipped_manifests_name_existing_example_files():
    data_root = DPST_DATA.resolve()  # the manifest resolves its paths; the shared folder may be a symlink
    full = read_manifest(REPOSITORY / "manifests" / "dpst-all.jsonl", data_root=data_root, config=BASE)
    smoke = read_manifest(REPOSITORY / "manifests" / "dpst-smoke.csv", data_root=data_root, config=BASE)
    assert [entry.id for entry in full] == [f"pair{number:02d}" for number in range(1, 61)]
    assert full[22].content == str(data_root / "input" / "in23.png")
    assert full[22].style_mask == str(data_root / "segmentation" / "tar23.png")
    assert 2 <= len(smoke) <= 5
    for entry in [*full, *smoke]:
        for path in (entry.content, entry.style, entry.content_mask, entry.style_mask):
            assert path is None or Path(path).is_file(), path
