"""Leaflet and plugin files served by the service itself instead of public CDNs.

Folium pages load Leaflet, its plugins and their CSS from jsDelivr, cdnjs and others. A command
room on a government network often cannot reach them (and neither can CI), so the service can
serve them itself: ``gis map assets`` fetches each library once, at install time, as the package
its authors publish on the npm registry (``npm pack``, which checks the registry's integrity
hash), and unpacks it into ``GIS_MAP_ASSETS_DIR``. Three small scripts folium ships in its own
Python package (the heat layers) are copied from there. Nothing is committed to this repository.

A page built with ``assets_url`` set loads every file from there; a file that is not in the
manifest below raises, so a new folium plugin cannot silently fall back to a CDN.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import folium
from branca.element import Element

from gis.errors import MapAssetsMissingError, ValidationError


@dataclass(frozen=True)
class NpmPackage:
    """One library, by its npm name and the exact version folium asks for."""

    name: str
    version: str

    @property
    def folder(self) -> str:
        """The folder it unpacks to under the assets directory."""
        return f"{self.name.replace('/', '__')}@{self.version}"


LEAFLET = NpmPackage("leaflet", "1.9.3")
JQUERY = NpmPackage("jquery", "3.7.1")
BOOTSTRAP = NpmPackage("bootstrap", "5.2.2")
FONTAWESOME = NpmPackage("@fortawesome/fontawesome-free", "6.2.0")
# The npm mirror of Leaflet.awesome-markers 2.0.2, the version folium loads from cdnjs.
AWESOME_MARKERS = NpmPackage("drmonty-leaflet-awesome-markers", "2.0.2")
MARKERCLUSTER = NpmPackage("leaflet.markercluster", "1.1.0")
ISO8601 = NpmPackage("iso8601-js-period", "0.2.1")
TIMEDIMENSION = NpmPackage("leaflet-timedimension", "1.1.1")
# leaflet-timedimension's CSS takes its button icons (Glyphicons Halflings) from a Bootstrap 3 CDN;
# locally they come from Bootstrap 3's own font files (3.3.7: a superset of 3.0's glyphs).
GLYPHICONS = NpmPackage("bootstrap", "3.3.7")
GLYPHICONS_FONT = f"{GLYPHICONS.folder}/dist/fonts/glyphicons-halflings-regular"
# Mapbox Vector Tiles in Leaflet, for the vector-tile page (/maps/tiles) of the OGC API.
VECTORGRID = NpmPackage("leaflet.vectorgrid", "1.3.0")
PACKAGES = (
    LEAFLET,
    JQUERY,
    BOOTSTRAP,
    FONTAWESOME,
    AWESOME_MARKERS,
    MARKERCLUSTER,
    ISO8601,
    TIMEDIMENSION,
    GLYPHICONS,
    VECTORGRID,
)
# Scripts folium ships inside its Python package (folium/templates/), copied at fetch time.
FOLIUM_FOLDER = f"folium@{folium.__version__}"
FOLIUM_FILES = ("leaflet_heat.min.js", "pa7_hm.min.js", "pa7_leaflet_hm.min.js")

_GH_FOLIUM = "https://cdn.jsdelivr.net/gh/python-visualization/folium"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_JSDELIVR = "https://cdn.jsdelivr.net/npm"

# Every URL folium's classes used here reference -> the file under the assets directory, or None
# for a stylesheet the maps do not need (glyphicons and icon rotation: the maps use Font Awesome
# icons and never rotate them).
LOCAL_PATHS: dict[str, str | None] = {
    f"{_JSDELIVR}/leaflet@1.9.3/dist/leaflet.js": f"{LEAFLET.folder}/dist/leaflet.js",
    f"{_JSDELIVR}/leaflet@1.9.3/dist/leaflet.css": f"{LEAFLET.folder}/dist/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": f"{JQUERY.folder}/dist/jquery.min.js",
    f"{_JSDELIVR}/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": (
        f"{BOOTSTRAP.folder}/dist/js/bootstrap.bundle.min.js"
    ),
    f"{_JSDELIVR}/bootstrap@5.2.2/dist/css/bootstrap.min.css": (
        f"{BOOTSTRAP.folder}/dist/css/bootstrap.min.css"
    ),
    f"{_JSDELIVR}/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": (
        f"{FONTAWESOME.folder}/css/all.min.css"
    ),
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": (
        f"{AWESOME_MARKERS.folder}/js/leaflet.awesome-markers.js"
    ),
    f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": (
        f"{AWESOME_MARKERS.folder}/css/leaflet.awesome-markers.css"
    ),
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": None,
    f"{_GH_FOLIUM}/folium/templates/leaflet.awesome.rotate.min.css": None,
    f"{_CDNJS}/leaflet.markercluster/1.1.0/leaflet.markercluster.js": (
        f"{MARKERCLUSTER.folder}/dist/leaflet.markercluster.js"
    ),
    f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.css": (
        f"{MARKERCLUSTER.folder}/dist/MarkerCluster.css"
    ),
    f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": (
        f"{MARKERCLUSTER.folder}/dist/MarkerCluster.Default.css"
    ),
    f"{_JSDELIVR}/iso8601-js-period@0.2.1/iso8601.min.js": f"{ISO8601.folder}/iso8601.js",
    f"{_JSDELIVR}/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js": (
        f"{TIMEDIMENSION.folder}/dist/leaflet.timedimension.min.js"
    ),
    f"{_JSDELIVR}/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css": (
        f"{TIMEDIMENSION.folder}/dist/leaflet.timedimension.control.css"
    ),
    f"{_JSDELIVR}/leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.min.js": (
        f"{VECTORGRID.folder}/dist/Leaflet.VectorGrid.bundled.min.js"
    ),
    f"{_GH_FOLIUM}@main/folium/templates/leaflet_heat.min.js": (
        f"{FOLIUM_FOLDER}/leaflet_heat.min.js"
    ),
    f"{_GH_FOLIUM}/folium/templates/pa7_hm.min.js": f"{FOLIUM_FOLDER}/pa7_hm.min.js",
    f"{_GH_FOLIUM}/folium/templates/pa7_leaflet_hm.min.js": (
        f"{FOLIUM_FOLDER}/pa7_leaflet_hm.min.js"
    ),
}


def default_assets_dir() -> Path:
    """Where fetched assets live unless GIS_MAP_ASSETS_DIR says otherwise."""
    return Path.home() / ".cache" / "gis" / "map-assets"


def missing_files(assets_dir: Path) -> list[str]:
    """The manifest's files not present under ``assets_dir`` (empty when all are there)."""
    wanted = sorted(
        {path for path in LOCAL_PATHS.values() if path is not None}
        | {f"{GLYPHICONS_FONT}.woff2", f"{GLYPHICONS_FONT}.woff"}
    )
    return [path for path in wanted if not (assets_dir / path).is_file()]


def assets_ready(assets_dir: Path) -> bool:
    """True when every file the maps load is present locally."""
    return not missing_files(assets_dir)


def _npm_pack(package: NpmPackage, workdir: Path) -> Path:
    """Download one package tarball with npm (registry integrity checked by npm)."""
    npm = shutil.which("npm")
    if npm is None:
        raise MapAssetsMissingError("npm is not installed; install Node.js/npm to fetch map assets")
    result = subprocess.run(
        [npm, "pack", f"{package.name}@{package.version}", "--silent"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise MapAssetsMissingError(
            f"npm pack {package.name}@{package.version} failed: {result.stderr.strip()[-500:]}"
        )
    return workdir / result.stdout.strip().splitlines()[-1]


def _unpack(tarball: Path, target: Path) -> None:
    """Unpack an npm tarball's ``package/`` folder into ``target``, refusing unsafe members."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tarball, "r:gz") as archive:
        archive.extractall(staging, filter="data")
    # npm tarballs hold one top folder, normally "package/".
    (top,) = [child for child in staging.iterdir() if child.is_dir()]
    shutil.rmtree(target, ignore_errors=True)
    top.rename(target)
    shutil.rmtree(staging, ignore_errors=True)


def fetch_assets(
    assets_dir: Path, *, force: bool = False, log: Callable[[str], None] = print
) -> list[str]:
    """Fetch the libraries into ``assets_dir`` (skipping those present); returns those fetched."""
    assets_dir.mkdir(parents=True, exist_ok=True)
    fetched: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gis-map-assets-") as tmp:
        for package in PACKAGES:
            target = assets_dir / package.folder
            if target.is_dir() and not force:
                continue
            log(f"fetching {package.name}@{package.version} from the npm registry")
            _unpack(_npm_pack(package, Path(tmp)), target)
            fetched.append(f"{package.name}@{package.version}")
    folium_target = assets_dir / FOLIUM_FOLDER
    folium_target.mkdir(exist_ok=True)
    source = Path(folium.__file__).parent / "templates"
    for name in FOLIUM_FILES:
        shutil.copyfile(source / name, folium_target / name)
    missing = missing_files(assets_dir)
    if missing:
        raise MapAssetsMissingError(f"after fetching, still missing: {', '.join(missing)}")
    return fetched


def _walk(element: Element) -> Iterable[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _localised(links: list[tuple[str, str]], base: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, url in links:
        if url not in LOCAL_PATHS:
            # A bug in this module, not the user's: the manifest must list every library used.
            raise ValidationError(f"map asset {url} has no local copy; add it to LOCAL_PATHS")
        path = LOCAL_PATHS[url]
        if path is not None:
            out.append((name, f"{base}/{path}"))
    return out


def use_local_assets(root: Element, base_url: str) -> None:
    """Point every script and stylesheet of a map at ``base_url`` instead of public CDNs."""
    base = base_url.rstrip("/")
    # In the body, so it comes after (and overrides) the CDN @font-face of the plugin's CSS.
    root.html.add_child(  # type: ignore[attr-defined]
        Element(
            "<style>@font-face{font-family:'Glyphicons Halflings';"
            f"src:url('{base}/{GLYPHICONS_FONT}.woff2') format('woff2'),"
            f"url('{base}/{GLYPHICONS_FONT}.woff') format('woff')}}</style>"
        ),
        name="gis_glyphicons",
    )
    for element in _walk(root):
        for attribute in ("default_js", "default_css"):
            links = getattr(element, attribute, None)
            if links:
                # Instance attributes shadow the class lists, so other maps are unaffected.
                setattr(element, attribute, _localised(list(links), base))


def assets_dir_for(configured: str | None) -> Path:
    """The assets folder from the GIS_MAP_ASSETS_DIR setting (or the default)."""
    return Path(configured).expanduser() if configured else default_assets_dir()


def asset_url(cdn_url: str, base: str | None) -> str:
    """Where a page loads the library at ``cdn_url``: its local copy under ``base``, or the CDN
    itself when ``base`` is None (GIS_MAP_ASSETS=cdn)."""
    if base is None:
        return cdn_url
    path = LOCAL_PATHS.get(cdn_url)
    if path is None:
        raise ValidationError(f"map asset {cdn_url} has no local copy; add it to LOCAL_PATHS")
    return f"{base.rstrip('/')}/{path}"


def choose_assets_url(mode: str, assets_dir: Path, local_url: str) -> str | None:
    """Where pages load their libraries: ``local_url``, or None for the CDNs (mode cdn/auto)."""
    if mode == "cdn":
        return None
    ready = assets_ready(assets_dir)
    if mode == "local" and not ready:
        raise MapAssetsMissingError(
            f"map libraries are not in {assets_dir}: run `gis map assets` once "
            "(fetches Leaflet and plugins from the npm registry), or set GIS_MAP_ASSETS=cdn"
        )
    return local_url if ready else None
