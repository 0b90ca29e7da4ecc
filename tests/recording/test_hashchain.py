"""The hash-chained JSON-lines file: append, reopen, verify, tampering and torn lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from recording.hashchain import (
    GENESIS_HASH,
    ChainCorruptedError,
    ChainFault,
    HashChain,
    canonical_json,
    entry_hash,
    read_chain,
    verify_chain,
)


def make_chain(path: Path, count: int) -> list[dict]:
    with HashChain(path) as chain:
        return [chain.append({"n": i, "text": f"entry {i} — ünïcode"}) for i in range(count)]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": "ä"}) == '{"a":"ä","b":1}'.encode()


def test_entries_are_chained_and_each_line_is_canonical(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    entries = make_chain(path, 3)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    for entry, raw in zip(entries, lines(path), strict=True):
        assert raw == canonical_json(entry) + b"\n"
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert entry["hash"] == hashlib.sha256(canonical_json(body)).hexdigest() == entry_hash(entry)
    result = verify_chain(path)
    assert result.valid and result.entries == 3 and result.last_hash == entries[-1]["hash"]


def test_reopen_resumes_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    first = make_chain(path, 2)
    with HashChain(path) as chain:
        assert chain.count == 2 and chain.last_hash == first[-1]["hash"]
        third = chain.append({"n": "after reopen"})
    assert third["seq"] == 3 and third["prev_hash"] == first[-1]["hash"]
    assert verify_chain(path).valid
    assert [e["n"] for e in read_chain(path)] == [0, 1, "after reopen"]


def test_reserved_fields_are_refused(tmp_path: Path) -> None:
    with HashChain(tmp_path / "c.jsonl") as chain, pytest.raises(ValueError):
        chain.append({"seq": 7})


def test_edited_field_is_named_as_bad_hash(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    make_chain(path, 5)
    raw = lines(path)
    raw[2] = raw[2].replace(b'"n":2', b'"n":9')
    path.write_bytes(b"".join(raw))
    problem = verify_chain(path).problem
    assert problem is not None
    assert (problem.line, problem.seq, problem.fault) == (3, 3, ChainFault.BAD_HASH)
    assert verify_chain(path).entries == 2


def test_deleted_line_is_named_as_seq_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    make_chain(path, 5)
    raw = lines(path)
    del raw[1]
    path.write_bytes(b"".join(raw))
    problem = verify_chain(path).problem
    assert problem is not None
    assert (problem.line, problem.seq, problem.fault) == (2, 3, ChainFault.SEQ_MISMATCH)
    assert "expected seq 2" in problem.detail


def test_reordered_lines_are_named_at_the_first_moved_line(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    make_chain(path, 5)
    raw = lines(path)
    raw[2], raw[3] = raw[3], raw[2]
    path.write_bytes(b"".join(raw))
    problem = verify_chain(path).problem
    assert problem is not None
    assert (problem.line, problem.seq, problem.fault) == (3, 4, ChainFault.SEQ_MISMATCH)


def test_rehashed_forgery_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    make_chain(path, 4)
    raw = lines(path)
    forged = json.loads(raw[1])
    forged["text"] = "forged"
    forged["hash"] = entry_hash(forged)
    raw[1] = canonical_json(forged) + b"\n"
    path.write_bytes(b"".join(raw))
    problem = verify_chain(path).problem
    assert problem is not None
    assert (problem.line, problem.seq, problem.fault) == (3, 3, ChainFault.BROKEN_LINK)


def test_garbage_line_is_unparseable(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    make_chain(path, 3)
    raw = lines(path)
    raw.insert(1, b"not json\n")
    path.write_bytes(b"".join(raw))
    problem = verify_chain(path).problem
    assert problem is not None and (problem.line, problem.fault) == (2, ChainFault.UNPARSEABLE)


def test_torn_last_line_is_reported_then_cut_and_recorded_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    entries = make_chain(path, 3)
    torn = b'{"n":3,"text":"half writ'
    with path.open("ab") as f:
        f.write(torn)
    result = verify_chain(path)
    assert result.problem is not None
    assert (result.problem.line, result.problem.fault) == (4, ChainFault.TORN_TAIL)
    assert result.entries == 3

    with HashChain(path) as chain:
        assert chain.repaired is not None and chain.repaired.data == torn
        assert chain.count == 4
        chain.append({"n": "next"})
    repaired = read_chain(path)
    assert repaired[3]["type"] == "chain_repaired"
    assert repaired[3]["prev_hash"] == entries[-1]["hash"]
    assert repaired[3]["torn_bytes"] == len(torn)
    assert repaired[3]["torn_sha256"] == hashlib.sha256(torn).hexdigest()
    assert repaired[3]["torn_text"] == torn.decode()
    assert repaired[4]["n"] == "next"
    assert verify_chain(path).valid


def test_a_chain_broken_before_its_end_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "chain.jsonl"
    make_chain(path, 3)
    raw = lines(path)
    raw[0] = raw[0].replace(b'"n":0', b'"n":5')
    path.write_bytes(b"".join(raw))
    with pytest.raises(ChainCorruptedError) as caught:
        HashChain(path)
    assert caught.value.problem.line == 1
    assert path.read_bytes() == b"".join(raw)  # nothing appended to a broken chain
