"""Small PDFs written by hand for the act tests: a plain one-page act, and acts with active content."""

from __future__ import annotations


def make_pdf(
    text: str = "Court act", *, catalog_extra: bytes = b"", extra_objects: tuple[bytes, ...] = ()
) -> bytes:
    """A one-page PDF with a classic cross-reference table; ``extra_objects`` are numbered from 6."""
    content = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R" + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *extra_objects,
    ]
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R"
        " /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return out


def with_javascript() -> bytes:
    """An act that runs JavaScript when opened."""
    return make_pdf(
        catalog_extra=b" /OpenAction 6 0 R", extra_objects=(b"<< /S /JavaScript /JS (app.alert(1)) >>",)
    )


def with_launch() -> bytes:
    """An act that launches a program when opened."""
    return make_pdf(catalog_extra=b" /OpenAction 6 0 R", extra_objects=(b"<< /S /Launch /F (calc.exe) >>",))


def with_broken_xref() -> bytes:
    """A valid act whose startxref points into the middle of an object."""
    data = make_pdf()
    head, _, tail = data.rpartition(b"startxref\n")
    return head + b"startxref\n" + b"17" + tail[tail.index(b"\n") :]


def with_hidden_javascript() -> bytes:
    """JavaScript whose names are written with #-escapes (/J#53 is /JS): invisible to a byte search."""
    return make_pdf(
        catalog_extra=b" /OpenAction 6 0 R",
        extra_objects=(b"<< /S /J#61vaScript /J#53 (app.alert(1)) >>",),
    )
