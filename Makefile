# The two commands a newcomer needs: `make demo` (run the service on the demo county) and
# `make test` (run the whole suite against a real PostGIS). Everything they need is installed here.
PYTHON ?= python3
BIN := .venv/bin
TEST_DATABASE_URL ?= postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_test
# pytest-xdist workers for `make test`, each with its own database (<TEST_DATABASE_URL>_gw0, …);
# a test file runs whole on one worker. 1 runs the suite in one process.
TEST_WORKERS ?= 2
export PYTHON

.PHONY: demo test db lint format bench clean

$(BIN)/gis: pyproject.toml scripts/bootstrap-python.sh
	./scripts/bootstrap-python.sh
	@touch $@

## db: install/start PostgreSQL + PostGIS + pgRouting if needed, create and migrate GIS_DATABASE_URL
db: $(BIN)/gis
	$(BIN)/gis db up
	$(BIN)/gis db migrate

## demo: the whole product on the demo county at http://127.0.0.1:8000 (docs at /docs)
demo: db
	$(BIN)/gis sample load --if-empty
	$(BIN)/gis stats refresh
	$(BIN)/gis map assets || echo "map pages will load Leaflet from public CDNs instead" >&2
	$(BIN)/gis users demo
	$(BIN)/gis serve

## test: the full suite against fresh PostGIS databases (GIS_TEST_DATABASE_URL, one per worker)
test: $(BIN)/gis
	GIS_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/gis db up
	./scripts/test-deps.sh
	GIS_TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) --dist loadfile --durations=15

## lint: the quality gates
lint: $(BIN)/gis
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gis

format: $(BIN)/gis
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
