"""Fuzzing the archive's file streaming: hostile ``Range``/``If-Range`` headers and hostile identifiers.

Ranges run against real sealed files whose bytes the test reads from disk, so every 200, 206 and multipart
part is checked byte for byte; identifiers must never reach a file outside the recordings root.
Examples per property: ``HEARING_FUZZ_EXAMPLES`` (default 50).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from reliability_harness import env_int

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "archive"))
from archive_bench import ArchiveBench, Clips  # noqa: E402
from archive_media import write_audio, write_video  # noqa: E402

from hearing_server.config import Config  # noqa: E402
from hearing_server.web.app import create_app  # noqa: E402
from recording.seal import CourtSigner, generate_court_certificate  # noqa: E402

# Streaming touches the database for one lookup per request: SQLite is enough.
pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    # Hypothesis prints the bench (with its media clips) in a failure report; the warning adds nothing.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

EXAMPLES = env_int("HEARING_FUZZ_EXAMPLES", 50)
BASE = "/api/v1/archive/hearings"
LINE_LIMIT = 8000  # near aiohttp's max_line_size/max_field_size (8190): its parser refuses longer ones
MAX_RANGES = 16  # the server's documented limit (archive/ranges.py)
MAX_DIGITS = 4300  # CPython's int() limit on decimal digits; longer numbers have a test of their own
CANARY = b"CANARY-OUTSIDE-THE-RECORDINGS-ROOT-7d1f0c"
FUZZ = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """A one-second VP8 WebM and Opus WebM, made once for the module."""
    folder = tmp_path_factory.mktemp("fuzz-clips")
    epoch_us = int(datetime(2026, 3, 2, 5, 0, tzinfo=UTC).timestamp() * 1_000_000)
    write_video(folder / "video.webm", "judge", epoch_us)
    write_audio(folder / "audio.webm", "judge", epoch_us)
    return Clips((folder / "video.webm").read_bytes(), (folder / "audio.webm").read_bytes())


@pytest.fixture(scope="module")
def court_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourtSigner, Path]:
    """A development court certificate and key, made once for the module."""
    folder = tmp_path_factory.mktemp("fuzz-court")
    signer = generate_court_certificate(folder / "court.pem", folder / "court-key.pem", "Fuzz Court")
    return signer, folder


@pytest.fixture
async def bench(
    aiohttp_client: Any, config: Config, clips: Clips, court_keys: tuple[CourtSigner, Path]
) -> AsyncIterator[ArchiveBench]:
    """The app with the archive and one logged-in account per staff role."""
    signer, folder = court_keys
    cfg = config.model_copy(
        update={
            "court_cert": folder / "court.pem",
            "court_key": folder / "court-key.pem",
            "court_name": "Fuzz Court",
        }
    )
    app = create_app(cfg)
    bench = ArchiveBench(client=await aiohttp_client(app), app=app, config=cfg, clips=clips, signer=signer)
    await bench.add_staff()
    yield bench
    shutil.rmtree(cfg.recordings_dir, ignore_errors=True)


class Served:
    """One sealed file as the archive serves it: id, URL, bytes on disk and validators."""

    def __init__(self, file_id: str, url: str, data: bytes, etag: str, last_modified: str) -> None:
        self.file_id, self.url, self.data = file_id, url, data
        self.etag, self.last_modified = etag, last_modified

    def __repr__(self) -> str:  # the bytes would swamp hypothesis's report
        return f"Served({self.file_id!r}, {len(self.data)} bytes, etag={self.etag})"


@pytest.fixture
async def served(bench: ArchiveBench) -> list[Served]:
    """Every file of one sealed hearing (tracks, log, manifest, signature) with its bytes and validators."""
    hearing_id = await bench.make_hearing(files=True)
    folder = await bench.hearing_folder(hearing_id)
    body = await (await bench.get(f"{BASE}/{hearing_id}")).json()
    files = []
    for item in body["files"]:
        head = await bench.client.head(item["url"], headers=bench.headers("archivist"))
        assert head.status == 200, item
        data = (folder / item["name"]).read_bytes()
        assert int(head.headers["Content-Length"]) == len(data) > 0
        files.append(
            Served(item["id"], item["url"], data, head.headers["ETag"], head.headers["Last-Modified"])
        )
    assert {"0", "1", "manifest", "signature"} <= {f.file_id for f in files}
    return files


# --- Range and validator strategies -----------------------------------------------------------------


Interval = tuple[int, int]


@dataclass(frozen=True)
class Headers:
    """Request headers and the statuses (and, for 206, the bytes) RFC 9110 and ranges.py allow."""

    values: dict[str, str]
    statuses: frozenset[int]
    wanted: list[Interval] | None = None  # for a 206: the union of the satisfiable ranges


ALL = frozenset({200, 206, 304, 412, 416})


def merge(intervals: list[Interval]) -> list[Interval]:
    """Inclusive intervals merged where they overlap or touch, in order."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def digits(size: int) -> st.SearchStrategy[int]:
    """Byte positions: around the file's edges, inside it, and far beyond it."""
    return st.one_of(
        st.integers(0, size + 2),
        st.sampled_from([0, 1, size - 1, size, size + 1]),
        st.integers(size, size + 100),
        st.integers(0, 2**64),
        st.integers(10**18, 10**60),
    )


def as_text(n: int, draw: st.DrawFn) -> str:
    """A position as text, sometimes with leading zeros or as a very long run of nines."""
    how = draw(st.sampled_from(["plain"] * 8 + ["zeros", "nines"]))
    if how == "zeros":
        return "0" * draw(st.integers(1, 40)) + str(n)
    if how == "nines":
        return "9" * draw(st.integers(20, MAX_DIGITS))
    return str(n)


def _value(text: str) -> int:
    return int(text) if len(text.lstrip("0")) <= MAX_DIGITS else 10**MAX_DIGITS


@st.composite
def range_spec(draw: st.DrawFn, size: int, shape: str) -> tuple[str, Interval | None, bool]:
    """One byte-range-spec: its text, the bytes it asks for (None: none satisfiable), and whether valid."""
    if shape == "unsatisfiable":
        first = draw(st.one_of(st.integers(size, size + 100), st.integers(size, 10**30)))
        return draw(st.sampled_from([f"{first}-", f"{first}-{first + 5}", "-0", "-00"])), None, True
    kinds = (
        ["int"] * 6
        + ["open"] * 2
        + ["suffix"] * 2
        + ["suffix0"]
        + ["reversed", "broken"] * (shape == "broken")
    )
    if shape == "invalid":
        kinds = ["reversed", "broken", "broken"]
    kind = draw(st.sampled_from(kinds))
    if kind == "suffix0":
        return "-" + "0" * draw(st.integers(1, 3)), None, True
    if kind == "suffix":
        text = as_text(draw(digits(size)), draw)
        n = _value(text)
        return "-" + text, ((max(0, size - n), size - 1) if n > 0 else None), True
    first_text = as_text(draw(digits(size)), draw)
    first = _value(first_text)
    if kind == "open":
        return first_text + "-", ((first, size - 1) if first < size else None), True
    last_text = as_text(draw(digits(size)), draw)
    last = _value(last_text)
    (first, first_text), (last, last_text) = sorted([(first, first_text), (last, last_text)])
    if kind == "reversed":
        if first == last:
            last, last_text = last + 1, str(last + 1)
        (first, first_text), (last, last_text) = (last, last_text), (first, first_text)
    if kind == "broken":
        template = draw(
            st.sampled_from(
                ["-{a}-{b}", "{a}-{b}-", "{a} - {b}", "{a}--{b}", "+{a}-{b}", "{a}-+{b}", "0x{a}-{b}",
                 "{a}-{b}x", "{a}.5-{b}", "{a}e3-{b}", "{a}", "-", "--", "-{a}-", "{a}-{b}/{c}", "*"]
            )
        )  # fmt: skip
        return template.format(a=first_text, b=last_text, c=size), None, False
    if last < first:
        return f"{first_text}-{last_text}", None, False
    return f"{first_text}-{last_text}", ((first, min(last, size - 1)) if first < size else None), True


@st.composite
def structured_range(draw: st.DrawFn, size: int, shape: str) -> tuple[str, str, list[Interval] | None]:
    """A ranges-specifier of a given shape (single, multi, unsatisfiable, many, broken, unit, any):
    the header, its class (valid, many, broken, ignored, lenient) and the bytes it asks for."""
    units = ["BYTES", "Bytes", " bytes ", "items", "byte", "bytes2", "none", "", "pages"]
    unit = draw(st.sampled_from(units if shape == "unit" else ["bytes"] * 60 + units))
    counts = {
        "single": st.just(1),
        "multi": st.integers(2, 6),
        "unsatisfiable": st.integers(1, 3),
        "many": st.integers(MAX_RANGES + 1, MAX_RANGES + 6),
        "broken": st.integers(0, 3),
    }
    count = draw(counts.get(shape, st.integers(0, MAX_RANGES + 6)))
    specs = draw(st.lists(range_spec(size, shape), min_size=count, max_size=count))
    if shape == "multi":  # mostly disjoint ranges, in any order, so that multipart answers are common
        points = sorted(draw(st.lists(st.integers(0, size - 1), min_size=2 * count, max_size=2 * count,
                                      unique=True)))  # fmt: skip
        pairs = [(points[i], points[i + 1]) for i in range(0, len(points), 2)]
        specs = [(f"{a}-{b}", (a, b), True) for a, b in draw(st.permutations(pairs))] + specs[:1]
    if shape == "broken":  # at least one invalid spec, anywhere
        specs.insert(draw(st.integers(0, len(specs))), draw(range_spec(size, "invalid")))
    separators = st.sampled_from([",", ",", ", ", " ,", ",\t", ",,", ", ,"])
    text = ""
    for index, (spec, _, _) in enumerate(specs):
        text += (draw(separators) if index else draw(st.sampled_from(["", "", " ", ","]))) + spec
    text += draw(st.sampled_from(["", "", "", " ", ",", ", "]))
    header = f"{unit}={text}"
    valid = bool(specs) and all(ok for _, _, ok in specs)
    wanted = merge([r for _, r, _ in specs if r is not None]) if valid else None
    if unit.strip().lower() != "bytes":
        return header, "ignored", None
    if unit != unit.strip():
        return header, "lenient", wanted  # whitespace around the unit: the server accepts it
    if not valid:
        return header, "broken", None
    return header, ("many" if len(specs) > MAX_RANGES else "valid"), wanted


TOKENS = ["bytes", "=", "-", ",", " ", "\t", "0", "1", "-0", "00", ";", "*", "/", "9" * 30, "items", "é",
          "٣", "²", "\u00a0", "\u200b", "😀", "%2C", '"', "W/"]  # fmt: skip
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\r\n"), max_size=120
)


@st.composite
def arbitrary_range(draw: st.DrawFn, size: int) -> str:
    """Any header text: free text, a soup of range tokens, or a valid range with junk around it."""
    how = draw(st.sampled_from(["text", "soup", "soup", "junk"]))
    if how == "text":
        return draw(field_text)
    tokens = [*TOKENS, str(size), str(size - 1), str(size + 1)]
    if how == "soup":
        return "".join(draw(st.lists(st.sampled_from(tokens), max_size=30)))
    return draw(field_text) + draw(structured_range(size, "any"))[0] + draw(field_text)


def http_date(moment: datetime) -> str:
    """An IMF-fixdate."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@st.composite
def validators(draw: st.DrawFn, target: Served) -> tuple[dict[str, str], bool | None, int | None]:
    """If-Range, If-Match and If-None-Match: the headers, whether If-Range holds, a forced status."""
    modified = parsedate_to_datetime(target.last_modified)
    headers: dict[str, str] = {}
    other_tag = '"' + draw(st.text(alphabet="0123456789abcdef-", min_size=1, max_size=20)) + '"'
    if_range = draw(
        st.sampled_from(["none"] * 24 + ["etag", "weak", "other", "date", "near", "date_any", "text"])
    )
    holds: bool | None = True
    if if_range == "etag":
        headers["If-Range"] = target.etag
    elif if_range == "weak":
        headers["If-Range"], holds = "W/" + target.etag, False  # If-Range compares strongly (§13.1.5)
    elif if_range == "other":
        headers["If-Range"], holds = other_tag, other_tag == target.etag
    elif if_range == "date":
        headers["If-Range"] = target.last_modified
    elif if_range == "near":
        moment = modified + timedelta(seconds=draw(st.sampled_from([-86400, -1, 1, 3600])))
        headers["If-Range"], holds = http_date(moment), False
    elif if_range == "date_any":
        moment = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1)))
        headers["If-Range"] = http_date(moment.replace(tzinfo=UTC))
        holds = moment.replace(tzinfo=UTC, microsecond=0) == modified
    elif if_range == "text":
        headers["If-Range"], holds = draw(field_text), None
    forced: int | None = None
    if_match = draw(st.sampled_from(["none"] * 30 + ["etag", "star", "list", "other"]))
    if if_match != "none":
        headers["If-Match"] = {
            "etag": target.etag,
            "star": "*",
            "list": f"{other_tag}, {target.etag}",
            "other": other_tag,
        }[if_match]
        if if_match == "other" and other_tag != target.etag:
            forced = 412
    if_none_match = draw(st.sampled_from(["none"] * 30 + ["etag", "weak", "star", "other"]))
    if if_none_match != "none":
        headers["If-None-Match"] = {
            "etag": target.etag,
            "weak": "W/" + target.etag,
            "star": "*",
            "other": other_tag,
        }[if_none_match]
        if forced is None and (if_none_match != "other" or other_tag == target.etag):
            forced = 304  # If-None-Match compares weakly; If-Match is evaluated first (§13.2.2)
    return headers, holds, forced


# One run per shape, so that even the default examples cover every kind of answer.
SHAPES = ["single", "multi", "unsatisfiable", "many", "broken", "unit", "any", "validators", "arbitrary",
          "absent"]  # fmt: skip


@st.composite
def range_request(draw: st.DrawFn, files: list[Served], how: str) -> tuple[Served, Headers]:
    """A file to ask for and headers of the request's shape, with what the answer may be."""
    target = draw(st.sampled_from(files))
    size = len(target.data)
    values, holds, forced = draw(validators(target)) if how in ("validators", "any") else ({}, True, None)
    statuses, wanted = ALL, None
    if how == "absent":
        statuses = frozenset({200})
    elif how == "arbitrary":
        values["Range"] = draw(arbitrary_range(size))
        statuses = frozenset({200, 206, 416})
    else:
        values["Range"], kind, wanted = draw(structured_range(size, how))
        if kind == "ignored":
            statuses = frozenset({200})  # unknown range unit: MUST be ignored (§14.2)
        elif holds is False:
            statuses = frozenset({200})  # If-Range does not match: Range MUST be ignored (§13.1.5)
        elif kind == "broken":
            statuses = frozenset({200, 416})  # invalid ranges-specifier: MAY be ignored or rejected
        elif kind == "lenient" or holds is None:
            statuses = frozenset({200, 206, 416})
        elif kind == "many":
            statuses = frozenset({200, 206, 416} if wanted else {200, 416})
        else:
            statuses = frozenset({206} if wanted else {416})
        event(f"range {kind}")
    if forced is not None:
        statuses = frozenset({forced})
    if len(values.get("Range", "")) > LINE_LIMIT:
        statuses |= {400}  # aiohttp's HTTP parser may refuse the field before the app sees it
    return target, Headers(values, statuses, wanted if 206 in statuses else None)


# --- checking an answer -------------------------------------------------------------------------------

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def interval_of(content_range: str, size: int) -> Interval:
    """The bytes a ``Content-Range`` names, checked against the file."""
    match = CONTENT_RANGE.match(content_range)
    assert match, content_range
    first, last, total = (int(g) for g in match.groups())
    assert total == size and 0 <= first <= last < size, content_range
    return first, last


def multipart_parts(body: bytes, boundary: str, size: int) -> list[tuple[Interval, bytes]]:
    """The parts of a ``multipart/byteranges`` body, read strictly by their stated lengths."""
    delimiter = b"--" + boundary.encode()
    parts: list[tuple[Interval, bytes]] = []
    at = 0
    while True:
        if parts:
            assert body[at : at + 2] == b"\r\n", body[at : at + 40]
            at += 2
        assert body[at : at + len(delimiter)] == delimiter, body[at : at + 60]
        at += len(delimiter)
        if body[at : at + 2] == b"--":
            assert body[at + 2 :] == b"\r\n", body[at:]
            return parts
        assert body[at : at + 2] == b"\r\n"
        end = body.index(b"\r\n\r\n", at)
        fields = dict(line.split(": ", 1) for line in body[at + 2 : end].decode("latin-1").split("\r\n"))
        first, last = interval_of(fields["Content-Range"], size)
        at = end + 4
        parts.append(((first, last), body[at : at + last - first + 1]))
        at += last - first + 1


def assert_error(body: bytes, content_type: str, what: str) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message"}}`` as JSON."""
    assert content_type.split(";")[0] == "application/json", (what, content_type, body[:200])
    error = json.loads(body)["error"]
    assert isinstance(error["code"], str) and error["code"], what
    assert isinstance(error["message"], str) and error["message"], what
    return error


def check_answer(
    status: int, headers: Any, body: bytes, target: Served, expected: Headers, what: str
) -> None:
    """The answer is one the request allows, and every byte in it is the file's byte at that offset."""
    data, size = target.data, len(target.data)
    assert status in expected.statuses, (what, status, body[:200])
    if status == 400:
        assert headers["Content-Type"].startswith("text/plain") and b"8190 bytes" in body, what
    elif status == 200:
        assert body == data and int(headers["Content-Length"]) == size, what
        assert "Content-Range" not in headers, what
    elif status == 206:
        assert int(headers["Content-Length"]) == len(body), what
        content_type = headers["Content-Type"]
        if content_type.startswith("multipart/byteranges"):
            boundary = content_type.split("boundary=", 1)[1]
            assert "Content-Range" not in headers, what
            parts = multipart_parts(body, boundary, size)
            assert len(parts) > 1, what
            event("multipart")
            for (first, last), payload in parts:
                assert payload == data[first : last + 1], (what, first, last)
            served = [interval for interval, _ in parts]
            assert merge(served) == sorted(served) and len(merge(served)) == len(served), (what, served)
        else:
            served = [interval_of(headers["Content-Range"], size)]
            first, last = served[0]
            assert body == data[first : last + 1], what
        if expected.wanted is not None:
            assert merge(served) == expected.wanted, (what, served, expected.wanted)
    elif status == 416:
        assert headers["Content-Range"] == f"bytes */{size}", what
        assert assert_error(body, headers["Content-Type"], what)["code"] == "range_not_satisfiable"
    elif status == 304:
        assert body == b"" and headers["ETag"] == target.etag, what
    else:
        assert status == 412 and assert_error(body, headers["Content-Type"], what)["code"]


# --- the properties ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@settings(FUZZ, max_examples=max(1, EXAMPLES // 5))
@given(data=st.data())
async def test_any_range_request_gets_the_exact_bytes_or_a_clean_refusal(
    bench: ArchiveBench, served: list[Served], shape: str, data: st.DataObject
) -> None:
    target, expected = data.draw(range_request(served, shape), label="request")
    response = await bench.client.get(target.url, headers=bench.headers("archivist", **expected.values))
    body = await response.read()
    event(f"status {response.status}")
    check_answer(response.status, response.headers, body, target, expected, repr(expected.values)[:300])
    assert (await bench.client.get("/healthz")).status == 200


@settings(FUZZ, max_examples=min(EXAMPLES, 10), phases=[Phase.explicit, Phase.generate])
@given(
    length=st.integers(MAX_DIGITS + 1, 8000),
    template=st.sampled_from(["bytes={n}-", "bytes=0-{n}", "bytes=-{n}", "bytes=0-0,{n}-"]),
)
async def test_range_positions_longer_than_python_parses_are_not_a_server_error(
    bench: ArchiveBench, served: list[Served], length: int, template: str
) -> None:
    target = served[0]
    size = len(target.data)
    values = {"Range": template.format(n="9" * length)}
    wanted = {"bytes={n}-": [], "bytes=0-0,{n}-": [(0, 0)]}.get(template, [(0, size - 1)])
    # Ignoring the header (200) is allowed too; what is not is a 5xx.
    expected = Headers(values, frozenset({200, 206 if wanted else 416}), wanted or None)
    response = await bench.client.get(target.url, headers=bench.headers("archivist", **values))
    body = await response.read()
    check_answer(response.status, response.headers, body, target, expected, f"{template} n={length}")


# --- identifiers ------------------------------------------------------------------------------------


def traversals(canary: Path, recordings: Path) -> list[str]:
    """Paths that would reach the canary if any part of the server joined an identifier to a folder."""
    up = [("../" * depth) + canary.name for depth in range(1, 8)]
    return [
        *up,
        *(p.replace("/", "\\") for p in up),
        *(p.replace("..", "%2e%2e").replace("/", "%2f") for p in up),
        *(p.replace("..", "%252e%252e").replace("/", "%252f") for p in up),
        *(p.replace("../", "....//") for p in up),
        str(canary),
        "file://" + str(canary),
        str(canary.relative_to("/")),
        "tracks/../../../../" + canary.name,
        str(recordings / ".." / canary.name),
        "manifest/../../" + canary.name,
        "0/../../" + canary.name,
        "/etc/passwd",
        "..",
        ".",
        "",
        "%00",
        "\x00",
        "0\x00",
        "manifest\x00.json",
        "0" * 40,
        "-1",
        " 0",
        "0 ",
        "٠",
        "MANIFEST",
        "manifest.json",
        "manifest.json.p7s",
        "confirmation-log.jsonl",
        "tracks/judge-video-001.webm",
        "00000000-0000-0000-0000-000000000000",
        "\u202e",
        "😀" * 40,
        "x" * 3000,
    ]


@pytest.fixture
def canary(bench: ArchiveBench) -> Path:
    """Known bytes outside the recordings root: in the data folder and the folder above it."""
    path = bench.config.data_dir / "canary.txt"
    path.write_bytes(CANARY)
    (bench.config.data_dir.parent / "canary.txt").write_bytes(CANARY)
    return path


@pytest.fixture
async def ended(bench: ArchiveBench) -> str:
    """An ended hearing with its folder but no seal: it serves no files (409)."""
    return await bench.make_hearing(status="ended", files=True)


@st.composite
def identifier(draw: st.DrawFn, fixed: list[str]) -> str:
    """Any text, a traversal attempt, or a traversal in free text."""
    how = draw(st.sampled_from(["fixed", "fixed", "text", "mixed", "long"]))
    if how == "fixed":
        return draw(st.sampled_from(fixed))
    if how == "long":
        return draw(st.sampled_from(fixed)) * draw(st.integers(10, 400))
    text = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
    if how == "text":
        return text
    return text + draw(st.sampled_from(fixed)) + draw(st.text(max_size=10))


def encode(value: str, how: str) -> str:
    """``value`` as one path segment: fully percent-encoded (dots too), or with dots left bare."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if how == "dots_encoded" else quoted


@FUZZ
@given(data=st.data())
async def test_hostile_identifiers_get_a_clean_error_and_never_a_file_outside_the_archive(
    bench: ArchiveBench, served: list[Served], canary: Path, ended: str, data: st.DataObject
) -> None:
    sealed_id = served[0].url.split("/")[5]
    real_files = {f.file_id for f in served}
    fixed = traversals(canary, bench.config.recordings_dir)
    where = data.draw(st.sampled_from(["view", "export", "file", "file", "file_of_sealed", "file_of_sealed"]))
    # An ended (unsealed) hearing serves no files (409) but may be viewed, so it is not tried on "view".
    hearing = data.draw(
        st.one_of(
            identifier([*fixed, sealed_id + "/..", ended + "\x00", sealed_id.upper()]),
            st.just(ended) if where in ("file", "export") else st.nothing(),
        ),
        label="hearing_id",
    )
    if where == "file_of_sealed":
        file_id = data.draw(identifier(fixed).filter(lambda f: f not in real_files), label="file_id")
    else:
        file_id = data.draw(
            st.one_of(identifier(fixed), st.sampled_from(sorted(real_files))), label="file_id"
        )
    how = data.draw(st.sampled_from(["quoted", "dots_encoded"]), label="encoding")
    hearing_part = encode(sealed_id if where == "file_of_sealed" else hearing, how)
    url = f"{BASE}/{hearing_part}"
    if where == "export":
        url += "/export"
    elif where != "view":
        url += f"/files/{encode(file_id, how)}"
    # HEAD only within the line limit: aiohttp's client chokes on the parser's 400 body to a HEAD.
    heads = "/files/" in url and len(url) <= LINE_LIMIT
    method = data.draw(st.sampled_from(["GET", "GET", "HEAD"]) if heads else st.just("GET"))
    response = await bench.client.request(
        method, url, headers=bench.headers("archivist", Range="bytes=0-"), allow_redirects=False
    )
    body = await response.read()
    event(f"{where} {response.status}")
    assert CANARY not in body, url[:300]
    if len(url) > LINE_LIMIT and response.status == 400 and response.content_type == "text/plain":
        return  # aiohttp's HTTP parser refused the over-long request line before the app saw it
    assert response.status in (400, 404, 409), (url[:300], response.status, body[:200])
    if method == "GET":
        assert_error(body, response.headers["Content-Type"], url[:300])
    assert (await bench.client.get("/healthz")).status == 200
