#!/usr/bin/env bash
# A local streaming replica of a PostgreSQL server, for the read-replica tests (tests/replica.py)
# and for trying GIS_READ_DATABASE_URLS by hand. Debian's cluster tools, run as root.
#
#   scripts/replica.sh allow  PRIMARY_URL        # the primary accepts replication from 127.0.0.1
#   scripts/replica.sh create PRIMARY_URL PORT   # (re)create and start a replica on PORT
#   scripts/replica.sh drop   PRIMARY_URL PORT   # stop and delete it
#
# PRIMARY_URL is a libpq or SQLAlchemy URL (postgresql+psycopg://user:pass@127.0.0.1:5432/db).
# Everything is idempotent: `allow` changes the primary's pg_hba.conf only when a replication
# connection is refused (one line, the auth method of its existing loopback line, then a
# reload; no restart); `create` drops a replica left behind by an earlier run first. The replica
# is a `pg_basebackup -R` of the whole server, cluster "gisreplica<PORT>", trust auth on
# loopback, streaming through the replication slot "gis_replica_<PORT>": without one, a busy
# primary recycles the WAL the new replica still needs before it has caught up. `drop` removes
# the slot too (a run killed before `drop` leaves it; the next `create` or `drop` removes it —
# until then the primary keeps WAL for it: see pg_replication_slots).
set -euo pipefail

usage() { sed -n '2,13p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1
url=${2/postgresql+psycopg:/postgresql:}
base=${url%/*}  # the server, without the database
psql_primary() { psql "$base/postgres" -XAtqc "$1"; }

version=$(psql_primary "SHOW server_version_num")
version=$((version / 10000))

allow() {
  if psql "$base/postgres?replication=true" -XAtqc "IDENTIFY_SYSTEM" >/dev/null 2>&1; then
    return 0
  fi
  local level
  level=$(psql_primary "SHOW wal_level")
  if [ "$level" = "minimal" ]; then
    echo "the primary has wal_level=minimal: run ALTER SYSTEM SET wal_level = replica and" \
      "restart it (this script does not restart a shared server)" >&2
    exit 1
  fi
  local hba method
  hba=$(psql_primary "SHOW hba_file")
  method=$(psql_primary "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'
    AND 'all' = ANY(database) AND address = '127.0.0.1' LIMIT 1")
  method=${method:-scram-sha-256}
  [ -w "$hba" ] || { echo "cannot write $hba (run as root, on the primary's host)" >&2; exit 1; }
  echo "allowing replication from 127.0.0.1 ($method) in $hba" >&2
  printf '# added by gis scripts/replica.sh: streaming replicas on this host\n' >>"$hba"
  printf 'host replication all 127.0.0.1/32 %s\n' "$method" >>"$hba"
  psql_primary "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  psql "$base/postgres?replication=true" -XAtqc "IDENTIFY_SYSTEM" >/dev/null
}

cluster_exists() { pg_lsclusters -h | awk -v v="$version" -v n="$1" '$1 == v && $2 == n' | grep -q .; }

drop() {
  local name=$1 slot=$2
  if cluster_exists "$name"; then
    pg_dropcluster --stop "$version" "$name"
  fi
  psql_primary "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
    WHERE slot_name = '$slot' AND NOT active" >/dev/null
}

create() {
  local port=$1 name=$2 slot=$3
  allow
  drop "$name" "$slot"
  pg_createcluster "$version" "$name" --port "$port" -- --auth-host=trust --auth-local=trust \
    >/dev/null
  local conf=/etc/postgresql/$version/$name data
  data=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $6}')
  # A hot standby needs these at least as large as on its primary; and it is small otherwise.
  {
    echo "# gis scripts/replica.sh: a hot standby of $base"
    for setting in max_connections max_worker_processes max_wal_senders \
      max_prepared_transactions max_locks_per_transaction; do
      echo "$setting = $(psql_primary "SHOW $setting")"
    done
    echo "shared_buffers = 64MB"
    echo "hot_standby = on"
    echo "listen_addresses = '127.0.0.1'"
  } >"$conf/conf.d/gis-replica.conf"
  rm -rf "$data"
  install -d -o postgres -g postgres -m 700 "$data"
  runuser -u postgres -- pg_basebackup -d "$base/postgres" -D "$data" -R -X stream -c fast \
    -C -S "$slot"
  # Replaying up to a consistent state can take minutes when the primary is busy: wait for it.
  pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start -- -t 900
  for _ in $(seq 1 600); do
    pg_isready -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.5
  done
  echo "the replica on port $port did not start; see /var/log/postgresql/" >&2
  exit 1
}

case "$action" in
  allow) allow ;;
  create) [ $# -eq 3 ] || usage; create "$3" "gisreplica$3" "gis_replica_$3" ;;
  drop) [ $# -eq 3 ] || usage; drop "gisreplica$3" "gis_replica_$3" ;;
  *) usage ;;
esac
