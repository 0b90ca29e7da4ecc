"""Retention: per-court periods, legal hold, the purge and its signed deletion records (both databases)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from archive_bench import ArchiveBench, days_ago

from archive import cli
from archive.admin import make_purger
from archive.audit import audit_path
from archive.retention import DELETIONS_DIR, expired_hearings
from recording.cms import verify_detached
from recording.hashchain import verify_chain

BASE = "/api/v1/archive"


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


async def purge(bench: ArchiveBench, *, dry_run: bool) -> dict:
    response = await bench.send("POST", f"{BASE}/purge", role="admin", json={"dry_run": dry_run})
    assert response.status == 200, await response.text()
    return await response.json()


async def test_purge_deletes_only_expired_sealed_hearings_not_on_hold(bench: ArchiveBench) -> None:
    days = bench.config.retention_days
    old = days_ago(days + 30)
    expired = await bench.make_hearing(files=True, case_number="2-1/2016", sealed_at=old)
    held = await bench.make_hearing(files=True, case_number="2-2/2016", sealed_at=old)
    unsealed = await bench.make_hearing(files=True, case_number="2-3/2016", status="ended", start=old)
    recent = await bench.make_hearing(files=True, case_number="2-4/2026", sealed_at=days_ago(days - 30))
    short = await bench.make_hearing(
        files=True, case_number="5-1/2026", court="Суд с коротким сроком", sealed_at=days_ago(3)
    )
    response = await bench.send(
        "PUT", f"{BASE}/hearings/{held}/hold", json={"hold": True, "reason": "appeal pending"}
    )
    assert response.status == 200 and (await response.json())["legal_hold"] is True
    response = await bench.send(
        "PUT", f"{BASE}/retention", role="admin", json={"court": "Суд с коротким сроком", "days": 2}
    )
    assert response.status == 200
    assert (await bench.send("PUT", f"{BASE}/retention", json={"court": "x", "days": 1})).status == 403

    kept = {h: snapshot(await bench.hearing_folder(h)) for h in (held, unsealed, recent)}
    deleted_before = {h: snapshot(await bench.hearing_folder(h)) for h in (expired, short)}
    plan = await purge(bench, dry_run=True)
    assert {c["hearing_id"] for c in plan["candidates"]} == {expired, short} and plan["deleted"] == []
    for hearing_id in (expired, short):
        assert (await bench.hearing_folder(hearing_id)).exists()

    done = await purge(bench, dry_run=False)
    assert set(done["deleted"]) == {expired, short} and done["failed"] == []
    for hearing_id, files in kept.items():
        assert snapshot(await bench.hearing_folder(hearing_id)) == files  # untouched, byte for byte
    for hearing_id in (expired, short):
        assert not (await bench.hearing_folder(hearing_id)).exists()

    # The deletion record: what went, when, under which rule, each file's hash; signed by the court.
    records = sorted((bench.config.data_dir / DELETIONS_DIR).glob("*.json"))
    assert len(records) == 2
    record_path = next(p for p in records if p.name.startswith(expired))
    record = json.loads(record_path.read_bytes())
    assert record["hearing"]["id"] == expired and record["hearing"]["case_number"] == "2-1/2016"
    assert record["rule"]["days"] == days and record["rule"]["source"] == "default"
    assert {f["path"]: f["sha256"] for f in record["files"]} == deleted_before[expired]
    assert record["manifest_sha256"] == deleted_before[expired]["manifest.json"]
    short_record = json.loads(next(p for p in records if p.name.startswith(short)).read_bytes())
    assert short_record["rule"] == {
        **short_record["rule"],
        "days": 2,
        "source": "court",
        "court": "Суд с коротким сроком",
    }
    signature = record_path.with_name(record_path.name + ".p7s").read_bytes()
    assert verify_detached(record_path.read_bytes(), signature, bench.signer.certificate).valid
    if shutil.which("openssl"):
        done_ssl = await asyncio.to_thread(
            subprocess.run,
            ["openssl", "cms", "-verify", "-binary", "-content", str(record_path),
             "-in", f"{record_path}.p7s", "-inform", "DER", "-CAfile", str(bench.config.court_cert_path),
             "-purpose", "any", "-out", "/dev/null"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done_ssl.returncode == 0, done_ssl.stderr

    # The archive shows the deletion; the files are gone for good.
    body = await (await bench.get(f"{BASE}/hearings/{expired}")).json()
    assert body["seal"]["state"] == "deleted" and body["files"] == []
    assert body["retention"]["deleted_at"] is not None and body["retention"]["deletion_record"].startswith(
        "deletions/"
    )
    assert (await bench.get(f"{BASE}/hearings/{expired}/files/0")).status == 410
    assert (await bench.get(f"{BASE}/hearings/{expired}/export")).status == 410
    listed = await (await bench.get(f"{BASE}/hearings", params={"case_number": "2-1/2016"})).json()
    assert listed["items"] == []
    listed = await (
        await bench.get(f"{BASE}/hearings", params={"case_number": "2-1/2016", "include_deleted": "true"})
    ).json()
    assert [i["deleted_at"] is not None for i in listed["items"]] == [True]
    assert (await purge(bench, dry_run=False))["deleted"] == []  # nothing is deleted twice

    # Released from hold, the held hearing goes at the next purge; the unsealed one never does.
    response = await bench.send(
        "PUT", f"{BASE}/hearings/{held}/hold", json={"hold": False, "reason": "appeal decided"}
    )
    body = await response.json()
    assert (
        body["legal_hold"] is False
        and body["hold_reason"] == "appeal decided"
        and body["hold_changed_by"] == "archivist"
    )
    assert (await purge(bench, dry_run=False))["deleted"] == [held]
    assert snapshot(await bench.hearing_folder(unsealed)) == kept[unsealed]
    audit = await (await bench.get(f"{BASE}/audit", role="admin", params={"action": "purge_deleted"})).json()
    assert {e["hearing_id"] for e in audit["items"]} == {expired, short, held}
    holds = await (await bench.get(f"{BASE}/audit", role="admin", params={"hearing_id": held})).json()
    assert [e["action"] for e in reversed(holds["items"])][:2] == ["hold_set", "hold_released"]


async def test_a_hold_set_after_planning_still_wins(bench: ArchiveBench) -> None:
    hearing_id = await bench.make_hearing(files=True, sealed_at=days_ago(bench.config.retention_days + 1))
    purger = make_purger(bench.app)
    async with bench.app_sessions() as db:
        (candidate,) = await expired_hearings(db, bench.config.retention_days, days_ago(0))
    await bench.send(
        "PUT", f"{BASE}/hearings/{hearing_id}/hold", json={"hold": True, "reason": "late appeal"}
    )
    assert await purger.purge_one(candidate, days_ago(0), actor="system") is False
    assert (await bench.hearing_folder(hearing_id)).exists()
    assert (
        list((bench.config.data_dir / DELETIONS_DIR).glob("*.json")) == []
    )  # no record of a deletion that did not happen


async def test_hold_needs_a_reason_and_an_archive_role(bench: ArchiveBench) -> None:
    hearing_id = await bench.make_hearing()
    url = f"{BASE}/hearings/{hearing_id}/hold"
    assert (await bench.send("PUT", url, json={"hold": True})).status == 400
    assert (await bench.send("PUT", url, json={"hold": True, "reason": ""})).status == 400
    assert (await bench.send("PUT", url, role="operator", json={"hold": True, "reason": "x"})).status == 403
    assert (
        await bench.send("PUT", url, json={"hold": True, "reason": "x"}, headers={"X-CSRF-Token": "wrong"})
    ).status == 403
    assert (await bench.send("PUT", url, role="admin", json={"hold": True, "reason": "x"})).status == 200
    retention = await (await bench.get(f"{BASE}/retention")).json()
    assert retention == {"default_days": bench.config.retention_days, "courts": []}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_cli_purge(
    bench: ArchiveBench, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = await bench.make_hearing(files=True, sealed_at=days_ago(bench.config.retention_days + 1))
    recent = await bench.make_hearing(files=True, sealed_at=days_ago(1) - timedelta(hours=1))
    cfg = bench.config
    monkeypatch.setenv("HEARING_DATABASE_URL", cfg.effective_database_url)
    monkeypatch.setenv("HEARING_COURT_CERT", str(cfg.court_cert_path))
    monkeypatch.setenv("HEARING_COURT_KEY", str(cfg.court_key_path))
    argv = ["purge", "--data-dir", str(cfg.data_dir)]
    assert await asyncio.to_thread(cli.main, [*argv, "--dry-run"]) == 0
    assert expired in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, [*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["deleted"] == [expired]
    assert (
        not (await bench.hearing_folder(expired)).exists() and (await bench.hearing_folder(recent)).exists()
    )
    audit = await (await bench.get(f"{BASE}/audit", role="admin")).json()
    assert ["purge", "purge_deleted", "purge"] == [e["action"] for e in audit["items"][:3]]
    # The command and the server appended to one chain, each after the other's entries.
    await bench.get(f"{BASE}/hearings")
    chain = verify_chain(audit_path(cfg.data_dir))
    assert chain.valid and chain.entries == 5  # purge x2 and purge_deleted (command), audit_read and search
