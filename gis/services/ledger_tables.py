"""Reading a town's own ledgers: CSV (UTF-8 or GBK), Excel ``.xlsx`` and point layers.

Pure: a file in, a ``Table`` out — rows keyed by canonical column names (``code``, ``name``,
``lon``…) whatever the header said (名称, 经度, X…), with every problem the reader can see as a
row-level ``RowError``. A file that cannot be read at all (wrong encoding, no sheet, no rows) is a
``ValidationError`` saying why. Nothing here knows about the database.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gis.errors import ValidationError

# Canonical column -> the headers that name it (compared lower-cased, without spaces, "_", "-").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("编号", "代码", "编码", "code", "id", "设备编号", "点位编号", "单位编号"),
    "name": ("名称", "name", "姓名", "点位名称", "设备名称", "单位名称"),
    "type": ("类型", "type", "kind", "设备类型", "单位类型", "摄像机类型"),
    "platform": ("平台", "platform"),
    "status": ("状态", "status"),
    "lon": ("经度", "lon", "lng", "long", "longitude"),
    "lat": ("纬度", "lat", "latitude"),
    "x": ("x", "x坐标", "easting", "东坐标"),
    "y": ("y", "y坐标", "northing", "北坐标"),
    "crs": ("坐标系", "crs", "坐标系统"),
    "phone": ("电话", "phone", "联系电话", "手机", "手机号", "手机号码"),
    "grid": ("所属网格", "grid", "网格", "网格编号", "网格名称", "grids"),
    "village": ("所属村社", "village", "村社", "村", "社区", "行政村", "所属村"),
    "town": ("所属乡镇", "town", "乡镇", "街道", "乡镇街道", "辖区", "jurisdiction"),
    "bearing": ("朝向", "bearing", "heading", "方向角", "方位角", "heading_deg"),
    "fov": ("视角", "fov", "视场角", "fov_deg"),
    "range": ("距离", "range", "可视距离", "监控距离", "range_m"),
}


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).lower()


_ALIAS_TO_COLUMN = {
    _header_key(alias): column for column, aliases in COLUMN_ALIASES.items() for alias in aliases
}
# The first (Chinese) alias is the header templates and exports write.
HEADERS = {column: aliases[0] for column, aliases in COLUMN_ALIASES.items()}


@dataclass(frozen=True)
class RowError:
    """One problem of one cell (or row, or the whole file when ``row`` is None)."""

    row: int | None  # as the spreadsheet numbers it: the header is row 1
    column: str | None  # the header as written in the file
    value: str | None
    reason: str


@dataclass
class Table:
    """A ledger as rows of canonical columns, with the problems found reading it."""

    source: str  # "CSV (GBK)", "xlsx sheet 摄像头", "GPKG layer cameras"
    headers: dict[str, str]  # canonical column -> header as written
    letters: dict[str, str] = field(default_factory=dict)  # column letter -> header as written
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Lon/lat of a point layer's geometry, already in the layer's CRS (or EPSG:4326).
    layer_crs: str | None = None


def column_of(header: str) -> str | None:
    """The canonical column a header names, if any (``"经度"`` -> ``"lon"``)."""
    key = _header_key(header)
    if key in _ALIAS_TO_COLUMN:
        return _ALIAS_TO_COLUMN[key]
    # "编号 code", "经度(lon)", "名称/name": any part may name it.
    for part in re.split(r"[/（）()\s]+", header.strip()):
        if part and _header_key(part) in _ALIAS_TO_COLUMN:
            return _ALIAS_TO_COLUMN[_header_key(part)]
    return None


def cell_text(value: Any) -> str | None:
    """A cell as text: None for blank (or NaN, a missing number of a GIS layer), integral floats
    without ".0" (Excel and GIS layers store 13800000000 and codes as numbers)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # NUL cannot be stored in PostgreSQL text and is never meant: drop it.
    text = str(value).replace("\x00", "").strip()
    return text or None


def read_table(
    data: bytes,
    filename: str,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
) -> Table:
    """Read a CSV, ``.xlsx`` or point layer (GeoPackage, Shapefile zip, GeoJSON) given as bytes."""
    suffix = Path(filename).suffix.lower()
    if not data:
        raise ValidationError(f"{filename} is empty")
    if suffix in (".csv", ".txt"):
        return _read_csv(data, encoding)
    if suffix == ".xlsx":
        return _read_xlsx(data, sheet)
    if suffix in (".gpkg", ".geojson", ".json", ".shp", ".zip"):
        return _read_layer(data, filename, sheet, encoding)
    if suffix == ".xls":
        raise ValidationError("old Excel .xls files are not read: save the sheet as .xlsx")
    raise ValidationError(
        f"cannot read {filename!r}: give a .csv, .xlsx, .gpkg, .geojson or zipped Shapefile"
    )


def read_table_file(
    path: Path, *, encoding: str | None = None, sheet: str | None = None, max_bytes: int = 0
) -> Table:
    """``read_table`` of a file on disk; ``max_bytes`` (0: no limit) refuses huge files."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no such file: {path}")
    if max_bytes and path.stat().st_size > max_bytes:
        from gis.errors import PayloadTooLargeError

        raise PayloadTooLargeError(
            f"{path.name} has {path.stat().st_size} bytes; at most {max_bytes} are imported"
        )
    if path.suffix.lower() == ".shp":
        return _read_layer_path(path, sheet, encoding, path.name)
    return read_table(path.read_bytes(), path.name, encoding=encoding, sheet=sheet)


# --- CSV ----------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    """The text of a CSV and the encoding it was read in."""
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise ValidationError(f"unknown text encoding {encoding!r}; try UTF-8 or GBK") from None
        except UnicodeDecodeError as error:
            guess = _guess_encoding(data)
            hint = f"; it looks like {guess}: try --encoding {guess}" if guess else ""
            line = data[: error.start].count(b"\n") + 1
            raise ValidationError(
                f"the file is not valid {encoding} (line {line}, byte {error.start}){hint}"
            ) from None
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    guess = _guess_encoding(data)
    try:
        if guess is not None:
            return data.decode(guess), guess
    except (UnicodeDecodeError, LookupError):
        pass
    raise ValidationError(
        "cannot tell the file's text encoding (not UTF-8, not GBK): give --encoding"
    )


def _guess_encoding(data: bytes) -> str | None:
    """GB18030 (a superset of GBK and GB2312) when the bytes read as Chinese, else the best guess
    of charset-normalizer, if any."""
    from charset_normalizer import from_bytes

    try:
        data.decode("gb18030")
        # Chinese office files that are not UTF-8 are GBK in practice; GB18030 reads them all.
        return "GBK" if _decodes(data, "gbk") else "GB18030"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:200_000]).best()
    return best.encoding if best is not None else None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(data: bytes, encoding: str | None) -> Table:
    text, used = _decode(data, encoding)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        lines = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as error:  # a NUL byte, an unterminated quote at the end…
        raise ValidationError(f"not a readable CSV file: {error}") from None
    return _from_grid(f"CSV ({used})", [(i + 1, line) for i, line in enumerate(lines)])


# --- xlsx ---------------------------------------------------------------------------------------


def _read_xlsx(data: bytes, sheet: str | None) -> Table:
    from openpyxl import load_workbook

    try:
        # read_only streams the rows (10,000 cameras in a few seconds); data_only=False keeps
        # formulas visible, so they can be refused rather than silently read as cached values.
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as error:  # zipfile.BadZipFile, KeyError, InvalidFileException…
        raise ValidationError(f"not a readable .xlsx file: {error}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ValidationError(
                f"no sheet {sheet!r}; the workbook has: {', '.join(book.sheetnames)}"
            )
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        merged = _merged_ranges(data, book.sheetnames.index(ws.title))
        grid, formulas = _xlsx_cells(ws)
        table = _from_grid(f"xlsx sheet {ws.title}", grid, merged=merged)
    finally:
        book.close()
    # A formula in the header row is already a header problem; report each cell once.
    seen = {(e.row, e.column) for e in table.errors}
    for problem in formulas:
        if (problem.row, problem.column) not in seen:
            header = table.letters.get(problem.column or "", problem.column)
            table.errors.append(RowError(problem.row, header, problem.value, problem.reason))
    return table


def _xlsx_cells(ws: Any) -> tuple[list[tuple[int, list[Any]]], list[RowError]]:
    """The rows of a worksheet with formulas blanked, and an error for each formula."""
    grid: list[tuple[int, list[Any]]] = []
    formulas: list[RowError] = []
    try:
        for cells in ws.iter_rows():
            row_cells = [c for c in cells if getattr(c, "row", None) is not None]
            if not row_cells:
                continue
            number = row_cells[0].row
            values: list[Any] = []
            for cell in cells:
                value = getattr(cell, "value", None)
                if getattr(cell, "data_type", None) == "f" or (
                    isinstance(value, str) and value.startswith("=")
                ):
                    formulas.append(
                        RowError(
                            number,
                            getattr(cell, "column_letter", None),
                            str(value),
                            "a formula: paste values only (复制后选择性粘贴为数值)",
                        )
                    )
                    value = None
                values.append(value)
            grid.append((number, values))
    except Exception as error:  # a damaged sheet: openpyxl raises whatever its parser meets
        raise ValidationError(f"cannot read the sheet {ws.title!r}: {error}") from None
    return grid, formulas


def _merged_ranges(data: bytes, sheet_index: int) -> list[str]:
    """The merged ranges (``A1:B1``) of a sheet; read-only worksheets do not expose them, so read
    the sheet's XML for its ``mergeCell`` elements."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
        book = archive.read("xl/workbook.xml").decode("utf-8", "replace")
        ids = re.findall(r"<(?:\w+:)?sheet\b[^>]*?r:id=\"([^\"]+)\"", book)
        if sheet_index >= len(ids):
            return []
        target = re.search(rf"Id=\"{re.escape(ids[sheet_index])}\"[^>]*?Target=\"([^\"]+)\"", rels)
        if target is None:
            target = re.search(
                rf"Target=\"([^\"]+)\"[^>]*?Id=\"{re.escape(ids[sheet_index])}\"", rels
            )
        if target is None:
            return []
        name = target.group(1).lstrip("/")
        name = name if name.startswith("xl/") else f"xl/{name}"
        try:
            xml = archive.read(name).decode("utf-8", "replace")
        except KeyError:
            return []
    return re.findall(r"<(?:\w+:)?mergeCell\b[^>]*?ref=\"([A-Z]+\d+(?::[A-Z]+\d+)?)\"", xml)


# --- the grid of cells -> a table -----------------------------------------------------------------


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _from_grid(
    source: str, grid: list[tuple[int, list[Any]]], *, merged: list[str] | None = None
) -> Table:
    """The header is the first non-blank row; every later non-blank row is a record."""
    filled = [(n, cells) for n, cells in grid if any(cell_text(c) is not None for c in cells)]
    if not filled:
        raise ValidationError(f"the {source} is empty: no header row and no records")
    header_row, header_cells = filled[0]
    table = Table(source=source, headers={})
    for ref in merged or []:
        first = ref.split(":")[0]
        row_number = int(re.sub(r"[A-Z]", "", first))
        if row_number <= header_row:
            table.errors.append(
                RowError(
                    row_number,
                    first,
                    ref,
                    "merged header cells: give every column its own header in one row "
                    "(取消合并单元格)",
                )
            )
    texts = [cell_text(c) for c in header_cells]
    last = max(i for i, t in enumerate(texts) if t is not None)
    by_index: dict[int, str] = {}
    for index, text in enumerate(texts[: last + 1]):
        letter = _column_letter(index)
        if text is None:
            table.errors.append(
                RowError(
                    header_row,
                    letter,
                    None,
                    "an empty header between named columns (merged header cells?)",
                )
            )
            continue
        column = column_of(text)
        table.letters[letter] = text
        if column is None:
            continue  # an extra column (备注…) is kept out of the import, not an error
        if column in table.headers:
            table.errors.append(RowError(header_row, text, text, f"a second column for {column!r}"))
            continue
        table.headers[column] = text
        by_index[index] = column
    for number, cells in filled[1:]:
        if number <= header_row:
            continue
        record = {column: cells[i] if i < len(cells) else None for i, column in by_index.items()}
        table.rows.append((number, record))
    if not table.rows and not table.errors:
        raise ValidationError(f"the {source} has a header row but no records")
    return table


# --- point layers -------------------------------------------------------------------------------


def _read_layer(data: bytes, filename: str, layer: str | None, encoding: str | None) -> Table:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(filename).name
        path.write_bytes(data)
        target = path
        if path.suffix.lower() == ".zip":
            import zipfile

            try:
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(tmp)
            except zipfile.BadZipFile:
                raise ValidationError(f"{filename} is not a zip archive") from None
            shapefiles = sorted(Path(tmp).rglob("*.shp"))
            if not shapefiles:
                raise ValidationError(f"{filename} holds no .shp file")
            target = shapefiles[0]
        return _read_layer_path(target, layer, encoding, filename)


def _read_layer_path(path: Path, layer: str | None, encoding: str | None, label: str) -> Table:
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path, layer=layer, encoding=encoding)
    except Exception as error:  # pyogrio raises DataSourceError, DataLayerError, OSError…
        raise ValidationError(f"cannot read {label}: {error}") from None
    if frame.empty:
        raise ValidationError(f"the layer of {label} has no features")
    crs = frame.crs.to_string() if frame.crs is not None else None
    if frame.crs is not None and frame.crs.is_projected:
        # Projected layers (Gauss–Krüger) carry their CRS: their geometry is converted here,
        # exactly, and the rows then hold lon/lat in its geographic datum.
        crs = "EPSG:4490" if "CGCS" in (frame.crs.name or "") else "EPSG:4326"
        frame = frame.to_crs(crs)
    # The geometry is the position: attribute columns that say it again (an exported ledger's
    # 经度/纬度/坐标系) are left out rather than read twice.
    columns = [
        str(c)
        for c in frame.columns
        if c != "geometry" and column_of(str(c)) not in ("lon", "lat", "x", "y", "crs")
    ]
    grid: list[tuple[int, list[Any]]] = [(1, [*columns, "经度", "纬度"])]
    geoms = frame.geometry.values
    records = frame.drop(columns="geometry").to_dict("records")
    for index, record in enumerate(records):
        geom = geoms[index]
        point = (
            (geom.x, geom.y)
            if geom is not None and not geom.is_empty and geom.geom_type == "Point"
            else (None, None)
        )
        grid.append((index + 2, [*(record[c] for c in columns), *point]))
    source = f"layer {layer or path.stem} of {label}"
    table = _from_grid(source, grid)
    table.layer_crs = crs
    for index, geom in enumerate(geoms):
        if geom is None or geom.is_empty or geom.geom_type != "Point":
            kind = "no geometry" if geom is None or geom.is_empty else geom.geom_type
            table.errors.append(
                RowError(index + 2, "geometry", kind, "a ledger layer holds points only")
            )
    return table


# --- writing ------------------------------------------------------------------------------------

WRITE_FORMATS = ("xlsx", "csv", "gpkg")


def write_table(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    path: Path,
    *,
    notes: dict[str, str] | None = None,
    sheet: str = "ledger",
) -> None:
    """Write rows of canonical columns under their Chinese headers as .xlsx (with a notes sheet
    when given), UTF-8 CSV (with a BOM, so Excel opens it right) or a GeoPackage point layer."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in WRITE_FORMATS:
        raise ValidationError(f"cannot write {path.name}: give a .xlsx, .csv or .gpkg file name")
    headers = [HEADERS[c] for c in columns]
    values = [[row.get(c) for c in columns] for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(headers)
            writer.writerows(["" if v is None else v for v in line] for line in values)
    elif fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        ws = book.create_sheet(sheet)
        ws.append(headers)
        for line in values:
            ws.append(line)
        if notes:
            info = book.create_sheet("说明 notes")
            info.append(["列 column", "说明 notes"])
            for column in columns:
                info.append([HEADERS[column], notes.get(column, "")])
        book.save(path)
    else:
        import geopandas as gpd
        from shapely.geometry import Point

        if not rows:
            raise ValidationError("nothing to export: a GeoPackage layer needs at least one row")
        frame = gpd.GeoDataFrame(
            [dict(zip(headers, line, strict=True)) for line in values],
            geometry=[Point(r["lon"], r["lat"]) for r in rows],
            crs="EPSG:4326",
        )
        frame.to_file(path, driver="GPKG", layer=sheet, engine="pyogrio")
