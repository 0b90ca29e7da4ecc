"""Two processes (two cluster nodes on one recordings folder) append to one hearing's log while each one's
checkpoint sweep signs it: the chain holds every entry of both, in one order, and every checkpoint holds."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from recording.checkpoints import check_checkpoints, read_checkpoints
from recording.confirmation_log import LOG_FILE_NAME
from recording.hashchain import read_chain, verify_chain
from recording.seal import CourtSigner

HEARING = "4f1c2a9e-0000-4000-8000-000000000015"
CHILD = Path(__file__).with_name("shared_log_child.py")
EACH = 100


async def test_two_nodes_appending_and_sweeping_one_log_keep_chain_and_checkpoints(
    tmp_path: Path, court: tuple[CourtSigner, Path]
) -> None:
    signer, cert = court
    key = cert.with_name("court.key")
    recordings = tmp_path / "recordings"
    folder = recordings / "court" / HEARING
    folder.mkdir(parents=True)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            str(recordings),
            str(folder),
            HEARING,
            str(cert),
            str(key),
            str(EACH),
            name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        for name in ("node-a", "node-b")
    ]
    outputs = await asyncio.gather(*(child.communicate() for child in children))
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()
        assert b"Traceback" not in err, err.decode()
    got = [list(map(int, out.split())) for out, _ in outputs]

    entries = read_chain(folder / LOG_FILE_NAME)
    assert verify_chain(folder / LOG_FILE_NAME).valid
    assert [e["seq"] for e in entries] == list(range(1, 2 * EACH + 1))  # none lost, none twice
    assert sorted(got[0] + got[1]) == list(range(1, 2 * EACH + 1))
    assert all(a != 0 and b != 0 for a, b in zip(got[0], got[1], strict=True))
    by_node = {
        name: [e["details"]["n"] for e in entries if e["actor"] == name] for name in ("node-a", "node-b")
    }
    assert by_node == {"node-a": list(range(EACH)), "node-b": list(range(EACH))}  # each node's in its order
    lines = read_checkpoints(folder)
    assert all(line.checkpoint is not None for line in lines), [line.error for line in lines]
    assert check_checkpoints(lines, HEARING, entries, signer.certificate) == []
    seqs = [line.checkpoint.seq for line in lines if line.checkpoint is not None]
    assert len(seqs) >= 10 and seqs[-1] == 2 * EACH  # the sweeps signed the last entries too
