"""``hearing-server archive verify PATH``: check a sealed hearing folder and print a human report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from recording.verify import format_report, verify_hearing


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the verify command."""
    parser = argparse.ArgumentParser(prog="hearing-server archive verify", description=__doc__)
    parser.add_argument("path", help="the hearing folder (holding manifest.json and manifest.json.p7s)")
    parser.add_argument(
        "--trusted-cert", help="the court certificate (PEM or DER) the signer must match or be issued by"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Verify one hearing folder; 0 when intact, 1 when any problem was found."""
    args = build_parser().parse_args(argv)
    report = verify_hearing(args.path, trusted_cert=args.trusted_cert)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report.valid else 1


if __name__ == "__main__":
    sys.exit(main())
