"""Reading ledgers: encodings, Excel traps (merged headers, formulas, empty sheets), header
aliases, and coordinates in every CRS a town's files use, with the obvious mistakes named."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import pytest
from openpyxl import Workbook
from pyproj import Transformer
from shapely.geometry import Point

from gis.errors import UnknownCrsError, ValidationError
from gis.geo import wgs84_to_gcj02
from gis.services.ledger_points import parse_point_crs, resolve_points
from gis.services.ledger_tables import column_of, read_table, read_table_file

LON, LAT = 121.05, 30.04


def xlsx(rows: list[list[object]], *, merge: str | None = None, title: str = "ledger") -> bytes:
    """An .xlsx of these rows (first row the header)."""
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = title
    for row in rows:
        ws.append(row)
    if merge:
        ws.merge_cells(merge)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_headers_in_chinese_or_english_with_aliases() -> None:
    assert column_of("经度") == "lon" and column_of("Longitude") == "lon"
    assert column_of("所属网格") == "grid" and column_of("视角") == "fov"
    assert column_of("编号 code") == "code" and column_of("朝向(bearing)") == "bearing"
    assert column_of("备注") is None


def test_gbk_csv_is_detected_and_utf8_forced_on_it_says_gbk() -> None:
    data = "编号,名称,经度,纬度\nTY-1,大洲镇路口,121.05,30.04\n".encode("gbk")
    table = read_table(data, "cameras.csv")
    assert table.source == "CSV (GBK)"
    row = {"code": "TY-1", "name": "大洲镇路口", "lon": "121.05", "lat": "30.04"}
    assert table.rows == [(2, row)]
    with pytest.raises(ValidationError, match=r"not valid UTF-8.*--encoding GBK"):
        read_table(data, "cameras.csv", encoding="UTF-8")


def test_utf8_csv_with_bom_and_semicolons() -> None:
    data = "\ufeffcode;name;lon;lat\nA;一;121.05;30.04\n".encode()
    assert read_table(data, "a.csv").rows[0][1]["code"] == "A"


def test_merged_header_cells_are_row_errors() -> None:
    data = xlsx([["编号", "位置", None], ["A", 121.05, 30.04]], merge="B1:C1")
    table = read_table(data, "a.xlsx")
    reasons = {(e.row, e.column): e.reason for e in table.errors}
    assert "merged header cells" in reasons[(1, "B1")]
    # A merge between named headers also leaves an empty header cell, reported by its column.
    data = xlsx([["编号", "经度", None, "纬度"], ["A", 121.05, 1, 30.04]], merge="B1:C1")
    reasons = {(e.row, e.column): e.reason for e in read_table(data, "a.xlsx").errors}
    assert "merged header cells" in reasons[(1, "B1")] and "empty header" in reasons[(1, "C")]


def test_formula_cells_are_refused_per_cell() -> None:
    data = xlsx([["编号", "名称", "经度", "纬度"], ["A", "x", "=120+1.05", 30.04]])
    table = read_table(data, "a.xlsx")
    [error] = table.errors
    assert (error.row, error.column, error.value) == (2, "经度", "=120+1.05")
    assert "formula" in error.reason


def test_empty_sheet_and_header_only_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match="empty"):
        read_table(xlsx([]), "a.xlsx")
    with pytest.raises(ValidationError, match="no records"):
        read_table(xlsx([["编号", "名称"]]), "a.xlsx")
    with pytest.raises(ValidationError, match="no sheet 'x'"):
        read_table(xlsx([["编号"], ["A"]]), "a.xlsx", sheet="x")
    with pytest.raises(ValidationError, match=r"\.xls files are not read"):
        read_table(b"xx", "a.xls")


def _points(rows: list[list[object]], crs: str | None = None) -> object:
    table = read_table(xlsx([["编号", "经度", "纬度"], *rows]), "a.xlsx")
    return resolve_points(table, crs)


def test_swapped_lonlat_and_metres_as_degrees_are_named() -> None:
    points = _points([["A", LAT, LON], ["B", 40512345.6, 3323456.7], ["C", LON, LAT]])
    reasons = {e.row: e.reason for e in points.errors}  # type: ignore[attr-defined]
    assert "swapped" in reasons[2]
    assert "look like metres" in reasons[3] and "CGCS2000-GK" in reasons[3]
    assert points.lonlat == {4: (LON, LAT)}  # type: ignore[attr-defined]


def test_gcj02_and_bd09_rows_are_converted_by_gis_geo() -> None:
    gcj_lon, gcj_lat = wgs84_to_gcj02(LON, LAT)
    points = _points([["A", gcj_lon, gcj_lat]], "高德")
    lon, lat = points.lonlat[2]  # type: ignore[attr-defined]
    assert abs(lon - LON) < 1e-8 and abs(lat - LAT) < 1e-8


def test_gauss_kruger_with_zone_number_in_surveyors_order() -> None:
    forward = Transformer.from_crs("EPSG:4490", "EPSG:4528", always_xy=True)  # zone 40
    easting, northing = forward.transform(LON, LAT)
    assert easting > 40_000_000
    table = read_table(xlsx([["编号", "X", "Y"], ["A", northing, easting]]), "gk.xlsx")
    points = resolve_points(table, "CGCS2000-GK")
    lon, lat = points.lonlat[2]
    assert abs(lon - LON) < 1e-8 and abs(lat - LAT) < 1e-8
    assert "surveyors' order" in points.notes[0]
    # Without the zone number the zone must be named.
    cm = Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    e2, n2 = cm.transform(LON, LAT)
    table = read_table(xlsx([["编号", "X", "Y"], ["A", e2, n2]]), "gk.xlsx")
    assert "zone number" in resolve_points(table, "CGCS2000-GK").errors[0].reason
    lon, lat = resolve_points(table, "EPSG:4549").lonlat[2]
    assert abs(lon - LON) < 1e-8 and abs(lat - LAT) < 1e-8


def test_unknown_crs_lists_what_is_accepted() -> None:
    with pytest.raises(UnknownCrsError, match="EPSG:4549"):
        parse_point_crs("Xian80")


def test_a_gauss_kruger_point_layer_is_read_in_lonlat(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"编号": ["A"], "名称": ["派出所"]}, geometry=[Point(LON, LAT)], crs="EPSG:4490"
    ).to_crs("EPSG:4549")
    path = tmp_path / "units.gpkg"
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    table = read_table_file(path)
    assert table.layer_crs == "EPSG:4490" and table.rows[0][1]["name"] == "派出所"
    lon, lat = resolve_points(table, None).lonlat[2]
    assert abs(lon - LON) < 1e-8 and abs(lat - LAT) < 1e-8


@pytest.mark.parametrize("name", ["a.csv", "a.xlsx", "a.gpkg", "a.geojson", "a.zip", "a.doc"])
@pytest.mark.parametrize(
    "data", [b"\x00\xff\xfe" * 50, b"PK\x03\x04" + b"\x00" * 40, "编号,名称\n\x00".encode("gbk")]
)
def test_garbage_is_a_clear_error_never_a_crash(name: str, data: bytes) -> None:
    with pytest.raises(ValidationError):
        read_table(data, name)


def test_a_zipped_shapefile_of_points_is_read_from_bytes(tmp_path: Path) -> None:
    import zipfile

    frame = gpd.GeoDataFrame({"code": ["A"], "name": ["x"]}, geometry=[Point(LON, LAT)], crs=4326)
    frame.to_file(tmp_path / "cams.shp", engine="pyogrio")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for part in tmp_path.glob("cams.*"):
            out.write(part, part.name)
    table = read_table(archive.getvalue(), "cams.zip")
    assert table.rows[0][1]["code"] == "A" and table.layer_crs == "EPSG:4326"
    assert resolve_points(table, None).lonlat[2] == pytest.approx((LON, LAT))
