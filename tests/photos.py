"""Photos made by the tests themselves: a JPEG with EXIF GPS and device tags, and broken ones."""

from __future__ import annotations

import io


def jpeg_with_gps(width: int = 64, height: int = 48, colour: str = "red") -> bytes:
    """A JPEG carrying EXIF GPS (29°N 119°E) and a camera model, as a phone writes it."""
    from PIL import Image

    image = Image.new("RGB", (width, height), colour)
    exif = Image.Exif()
    exif[0x0110] = "TestPhone 9"  # Model
    exif[0x0112] = 1  # Orientation
    gps = {1: "N", 2: (29.0, 0.0, 0.0), 3: "E", 4: (119.0, 0.0, 0.0)}
    exif[0x8825] = gps  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png(width: int = 32, height: int = 32) -> bytes:
    """A plain PNG."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(out, "PNG")
    return out.getvalue()


def huge_png_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG file that claims 10 gigapixels: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
