#!/usr/bin/env bash
# A real streaming read replica of this machine's PostgreSQL 15 main cluster, for development and CI.
#
#   bash scripts/local-replica.sh start    # make (or reuse) cluster 15/replica on 127.0.0.1:5433
#   eval "$(bash scripts/local-replica.sh env)"   # DATABASE_REPLICA_URLS for imgup and the tests
#   bash scripts/local-replica.sh status
#   bash scripts/local-replica.sh stop     # stop and drop the replica cluster and its slot
#
# The primary is 127.0.0.1:5432 with trust auth (as the tests use it). start adds a `host
# replication` trust line to its pg_hba.conf when missing (and reloads), makes cluster 15/replica
# with pg_createcluster, replaces its data with a pg_basebackup of the primary (-R: standby.signal
# and primary_conninfo; a physical slot so the primary keeps WAL the replica has not replayed),
# starts it and waits until it is in recovery, streaming and accepting connections. A running,
# streaming replica is reused. Run as root (cluster files belong to user postgres).
set -euo pipefail

VERSION=15
PRIMARY_CLUSTER=main
PRIMARY_PORT="${IMGUP_PRIMARY_PORT:-5432}"
CLUSTER=replica
PORT="${IMGUP_REPLICA_PORT:-5433}"
SLOT=imgup_local_replica
DB="${IMGUP_REPLICA_DB:-test}"
START_TIMEOUT="${IMGUP_REPLICA_START_TIMEOUT:-120}"
DATA="/var/lib/postgresql/$VERSION/$CLUSTER"
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER"
PRIMARY_HBA="/etc/postgresql/$VERSION/$PRIMARY_CLUSTER/pg_hba.conf"
LOCK=/tmp/imgup-local-replica.lock

log() { echo "local-replica [+${SECONDS}s]: $*" >&2; }

die() {
  log "ERROR: $*"
  local f="/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log"
  if [[ -s "$f" ]]; then
    echo "----- tail of $f -----" >&2
    tail -n 40 "$f" >&2
  fi
  exit 1
}

as_postgres() { runuser -u postgres -- "$@"; }

psql_at() {
  local port="$1"
  shift
  psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq "$@"
}

cluster_exists() { [[ -d "$CONF_DIR" ]]; }

# In recovery and its WAL receiver streams from the primary: a replica that follows.
healthy() {
  local state
  state="$(psql_at "$PORT" -c "select pg_is_in_recovery()::text || ':' || coalesce((select status from pg_stat_wal_receiver), 'none')" 2>/dev/null)" ||
    return 1
  [[ "$state" == "true:streaming" ]]
}

ensure_primary_replication() {
  [[ -f "$PRIMARY_HBA" ]] || die "no $PRIMARY_HBA: is PostgreSQL $VERSION's main cluster installed?"
  psql_at "$PRIMARY_PORT" -c "select 1" >/dev/null || die "the primary on 127.0.0.1:$PRIMARY_PORT does not answer"
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$PRIMARY_HBA"; then
    log "adding a replication line to $PRIMARY_HBA"
    echo "host replication all 127.0.0.1/32 trust" >>"$PRIMARY_HBA"
    psql_at "$PRIMARY_PORT" -c "select pg_reload_conf()" >/dev/null
  fi
  local level
  level="$(psql_at "$PRIMARY_PORT" -c "show wal_level")"
  [[ "$level" == "replica" || "$level" == "logical" ]] ||
    die "the primary's wal_level is $level; set it to replica and restart it"
}

drop_replica() {
  if cluster_exists; then
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" stop -m fast 2>/dev/null || true
    pg_dropcluster "$VERSION" "$CLUSTER" 2>/dev/null || true
  fi
  rm -rf "$CONF_DIR" "$DATA"
  # An unused slot would make the primary keep WAL forever.
  psql_at "$PRIMARY_PORT" -c \
    "select pg_drop_replication_slot('$SLOT') from pg_replication_slots where slot_name = '$SLOT' and not active" \
    >/dev/null 2>&1 || true
}

create_replica() {
  log "creating cluster $VERSION/$CLUSTER on port $PORT"
  pg_createcluster "$VERSION" "$CLUSTER" -p "$PORT" >/dev/null || die "pg_createcluster failed"
  # The same trust rules as the primary (loopback only), so the tests connect as they do there.
  cp "$PRIMARY_HBA" "$CONF_DIR/pg_hba.conf"
  chown postgres:postgres "$CONF_DIR/pg_hba.conf"
  cat >"$CONF_DIR/conf.d/imgup-replica.conf" <<EOF
listen_addresses = '127.0.0.1'
hot_standby = on
# Report replay progress often, so the primary's pg_stat_replication is current.
wal_receiver_status_interval = 1s
hot_standby_feedback = on
EOF
  rm -rf "$DATA"
  install -d -o postgres -g postgres -m 0700 "$DATA"
  log "pg_basebackup from 127.0.0.1:$PRIMARY_PORT"
  as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DATA" -R -X stream \
    -C -S "$SLOT" --checkpoint=fast >/dev/null || die "pg_basebackup failed"
}

start_replica() {
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start 9>&- || die "the replica did not start"
  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    ((SECONDS < deadline)) || die "the replica is not streaming after ${START_TIMEOUT}s"
    sleep 0.5
  done
}

start() {
  command -v pg_createcluster >/dev/null || die "pg_createcluster not found (postgresql-common)"
  exec 9>"$LOCK"
  flock -w 180 9 || die "another local-replica.sh holds $LOCK"
  ensure_primary_replication
  if healthy; then
    log "reusing the streaming replica on port $PORT"
    return 0
  fi
  if cluster_exists; then
    # A stopped replica whose slot still holds its WAL can simply resume.
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start 9>&- 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
      if healthy; then
        log "restarted the existing replica on port $PORT"
        return 0
      fi
      sleep 0.5
    done
    log "the existing replica does not stream: making it again"
    drop_replica
  else
    drop_replica
  fi
  create_replica
  start_replica
  # The database the tests use exists on the replica once replay reached its creation.
  psql_at "$PORT" -c "select 1 from pg_database where datname = '$DB'" | grep -q 1 ||
    log "note: database $DB does not exist on the primary"
  log "replica streaming on 127.0.0.1:$PORT"
}

stop() {
  exec 9>"$LOCK"
  flock -w 180 9 || die "another local-replica.sh holds $LOCK"
  drop_replica
  log "replica removed"
}

status() {
  if healthy; then
    echo "streaming on 127.0.0.1:$PORT"
  elif cluster_exists; then
    echo "exists, not streaming"
    return 1
  else
    echo "absent"
    return 1
  fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
env) echo "export DATABASE_REPLICA_URLS=postgres://postgres@127.0.0.1:$PORT/$DB" ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
