"""``hearing-server archive``: verify an export package or hearing folder offline, and purge expired hearings.

    hearing-server archive verify PACKAGE.zip|FOLDER [--trusted-cert COURT.pem] [--json]
    hearing-server archive purge [--dry-run] [--config FILE] [--data-dir DIR] [--json]

Exit status: 0 valid / purge done, 1 problems found / some hearing not purged, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from archive.audit import AccessAudit, AccessRecord, audit_path
from archive.package import format_package_report, verify_package
from archive.retention import DELETIONS_DIR, Purger, PurgeReport
from archive.storage import LocalDiskStorage
from hearing_server.config import Config, ConfigError, load_config
from recording.seal import generate_court_certificate


def build_parser() -> argparse.ArgumentParser:
    """The ``archive`` sub-commands and their options."""
    parser = argparse.ArgumentParser(prog="hearing-server archive", description="Archive tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify = commands.add_parser("verify", help="check an export package (ZIP) or a sealed folder offline")
    verify.add_argument("path", type=Path, help="PACKAGE.zip, an extracted package or a sealed folder")
    verify.add_argument("--trusted-cert", type=Path, help="the court certificate the signer must match")
    verify.add_argument("--workdir", type=Path, help="where to extract a ZIP (default: the temp folder)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    purge = commands.add_parser("purge", help="delete sealed hearings past retention and not on hold")
    purge.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    purge.add_argument("--config", type=Path, help="TOML configuration file (or HEARING_CONFIG)")
    purge.add_argument("--data-dir", type=Path, help="data directory (or HEARING_DATA_DIR)")
    purge.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _verify(args: argparse.Namespace) -> int:
    if args.trusted_cert is not None and not args.trusted_cert.is_file():
        print(f"hearing-server archive: no certificate at {args.trusted_cert}", file=sys.stderr)
        return 2
    report = verify_package(args.path, args.trusted_cert, workdir=args.workdir)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_package_report(report))
    return 0 if report.valid else 1


async def purge_now(config: Config, *, dry_run: bool) -> PurgeReport:
    """Run the purge once against ``config``'s database and files, recording it in the access audit."""
    from hearing_server.store.db import create_engine, sessionmaker

    engine = create_engine(config.effective_database_url)
    sessions = sessionmaker(engine)
    audit = AccessAudit(audit_path(config.data_dir), sessions)
    try:
        signer = await asyncio.to_thread(
            generate_court_certificate, config.court_cert_path, config.court_key_path, config.court_name
        )
        purger = Purger(
            sessions=sessions,
            storage=LocalDiskStorage(config.recordings_dir),
            signer=signer,
            deletions_dir=config.data_dir / DELETIONS_DIR,
            audit=audit,
            default_days=config.retention_days,
        )
        report = await purger.run(dry_run=dry_run)
        await audit.record(
            AccessRecord(
                actor="system",
                role="system",
                action="purge",
                status=200,
                result="ok",
                target="cli",
                details={"dry_run": dry_run, "deleted": len(report.deleted), "failed": len(report.failed)},
            )
        )
        return report
    finally:
        audit.close()
        await engine.dispose()


def _purge(args: argparse.Namespace) -> int:
    from hearing_server.store.db import upgrade_sync

    try:
        config = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"hearing-server archive: {exc}", file=sys.stderr)
        return 2
    upgrade_sync(config.effective_database_url)
    report = asyncio.run(purge_now(config, dry_run=args.dry_run))
    if args.json:
        print(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "candidates": [
                        {
                            "hearing_id": c.hearing_id,
                            "case_number": c.case_number,
                            "court": c.court,
                            "expired_at": c.expired_at.isoformat(),
                            "rule": c.rule.describe(),
                        }
                        for c in report.candidates
                    ],
                    "deleted": report.deleted,
                    "failed": [{"hearing_id": h, "error": e} for h, e in report.failed],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        verb = "would delete" if report.dry_run else "expired"
        print(f"{len(report.candidates)} hearing(s) {verb}:")
        for c in report.candidates:
            expired = f"expired {c.expired_at:%Y-%m-%d}"
            print(f"  {c.hearing_id}  {c.case_number}  {c.court}  {expired}  ({c.rule.describe()})")
        if not report.dry_run:
            print(f"deleted {len(report.deleted)}, failed {len(report.failed)}")
            for hearing_id, error in report.failed:
                print(f"  NOT deleted {hearing_id}: {error}")
    return 1 if report.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hearing-server archive ARGS``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    return _purge(args)


if __name__ == "__main__":
    sys.exit(main())
