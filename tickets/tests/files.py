"""Small real files for tests: images made by Pillow (a JPEG with a GPS position in its
EXIF, as a phone writes one), a PDF, and a Windows program."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_bytes(
    size: tuple[int, int] = (40, 20), *, gps: bool = True, orientation: int = 1
) -> bytes:
    """A JPEG whose EXIF has a camera, an orientation and (``gps``) where it was taken."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[ORIENTATION] = orientation
    if gps:
        exif[GPS_IFD] = {
            1: "N",
            2: (51.0, 30.0, 12.5),  # GPSLatitude
            3: "W",
            4: (0.0, 7.0, 39.0),  # GPSLongitude
        }
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 255, 200)).save(out, format="PNG")
    return out.getvalue()


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def exe_bytes() -> bytes:
    """The start of a Windows program (an MZ header, then the PE signature)."""
    header = bytearray(b"MZ" + b"\x90\x00" * 29 + b"\x00" * 2)
    header[0x3C:0x40] = (64).to_bytes(4, "little")
    return bytes(header[:64]) + b"PE\x00\x00" + b"\x00" * 200


def docx_bytes() -> bytes:
    """The smallest zip a Word document is recognised by: its parts' names."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()
