"""Run by the system python3 (which has Debian's python3-qgis; the venv cannot import qgis):
load an OAPIF layer of the grids headless and print what QGIS sees as JSON.

Usage: python3 qgis_probe.py <base url of /ogc> <srsname> <grid code>
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsVectorLayer

url, srsname, code = sys.argv[1:4]
app = QgsApplication([], False)
app.initQgis()
uri = f"url='{url}' typename='grids' srsname='{srsname}' pageSize='1000' restrictToRequestBBOX='0'"
layer = QgsVectorLayer(uri, "grids", "OAPIF")
found = {"valid": layer.isValid(), "crs": layer.crs().authid(), "count": 0, "centroid": None}
if layer.isValid():
    for feature in layer.getFeatures():
        found["count"] += 1
        if feature["code"] == code:
            point = feature.geometry().centroid().asPoint()
            found["centroid"] = [point.x(), point.y()]
print(json.dumps(found), flush=True)
# exitQgis() crashes headless QGIS 3.22 on the way out; the answer is already printed.
os._exit(0)
