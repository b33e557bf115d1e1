"""Photos made by the tests themselves: a JPEG with EXIF GPS and device tags, and broken ones."""

from __future__ import annotations

import io


def jpeg_with_gps(
    width: int = 64,
    height: int = 48,
    colour: str = "red",
    lonlat: tuple[float, float] = (119.0, 29.0),
    fmt: str = "JPEG",
) -> bytes:
    """A JPEG (or ``fmt``: HEIF) carrying EXIF GPS (29°N 119°E unless told) and a camera model,
    as a phone writes it."""
    from PIL import Image

    image = Image.new("RGB", (width, height), colour)
    exif = Image.Exif()
    exif[0x0110] = "TestPhone 9"  # Model
    exif[0x0112] = 1  # Orientation
    lon, lat = lonlat
    gps = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)}
    exif[0x8825] = gps  # GPSInfo
    out = io.BytesIO()
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def _dms(degrees: float) -> tuple[float, float, float]:
    whole = int(degrees)
    minutes = (degrees - whole) * 60
    return (float(whole), float(int(minutes)), round((minutes - int(minutes)) * 60, 4))


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
