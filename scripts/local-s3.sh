#!/usr/bin/env bash
# A real S3 server for development and CI: a single-node Ceph RGW on loopback.
#
#   bash scripts/local-s3.sh start    # install if missing, start, create user + bucket imgup-dev
#   eval "$(bash scripts/local-s3.sh env)"   # TEST_S3_* exports for the integration tests
#   eval "$(bash scripts/local-s3.sh env --imgup)"   # IMGUP_STORAGE/S3_* exports for imgup itself
#   bash scripts/local-s3.sh status
#   bash scripts/local-s3.sh stop     # kill the daemons, remove the directory
#
# One mon + one memstore OSD + radosgw, no mgr, no cephx, no systemd: every file (config, pid
# files, admin sockets, logs, keyring, data) lives under $IMGUP_RGW_DIR so stop can remove all
# of it. Data is in memory, so this is for tests and development only.
set -euo pipefail

DIR="${IMGUP_RGW_DIR:-/tmp/imgup-rgw}"
PORT="${IMGUP_RGW_PORT:-7480}"
MON_PORT="${IMGUP_RGW_MON_PORT:-3300}"
BUCKET="imgup-dev"
REGION="us-east-1"
# Fixed development credentials; this server only listens on 127.0.0.1.
ACCESS_KEY="IMGUPDEVACCESSKEY000"
SECRET_KEY="imgup-dev-secret-key-not-for-production00"
START_TIMEOUT="${IMGUP_RGW_START_TIMEOUT:-120}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF="$DIR/ceph.conf"
ENDPOINT="http://127.0.0.1:$PORT"

log() { echo "local-s3 [+${SECONDS}s]: $*" >&2; }

die() {
  log "ERROR: $*"
  if [[ -d "$DIR/log" ]]; then
    for f in "$DIR"/log/*.log "$DIR"/log/*.out; do
      [[ -s "$f" ]] || continue
      echo "----- tail of $f -----" >&2
      tail -n 40 "$f" >&2
    done
  fi
  exit 1
}

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }

# A zombie counts as gone: where PID 1 does not reap orphans, killed daemons linger as zombies.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z* ]]
}

pid_alive() { [[ -s "$1" ]] && alive "$(cat "$1")"; }

# Any HTTP status means RGW is serving; curl prints 000 when nothing answers.
rgw_answers() {
  local code
  code="$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$ENDPOINT/" || true)"
  [[ "$code" != "000" ]]
}

running() {
  pid_alive "$DIR/run/mon.pid" && pid_alive "$DIR/run/osd.pid" && pid_alive "$DIR/run/rgw.pid" && rgw_answers
}

install_if_missing() {
  local missing=0 bin
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
    command -v "$bin" >/dev/null 2>&1 || missing=1
  done
  ((missing)) || return 0
  [[ "$(id -u)" == 0 ]] || die "ceph packages are missing; run as root or: apt-get install radosgw ceph-mon ceph-osd"
  log "installing radosgw ceph-mon ceph-osd (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd >/dev/null ||
    die "apt-get install radosgw ceph-mon ceph-osd failed"
}

write_conf() {
  local fsid="$1"
  # \$name and \$cluster are Ceph metavariables, expanded per daemon.
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# auth none gives no session key, so the default "secure" mon connection mode cannot be set up.
ms mon client mode = crc
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
exec dir = $DIR/run
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# Batching map updates for a second (the default) makes each of RGW's pool creations wait for it.
paxos propose interval = 0.05
paxos min wait = 0.01
mon data avail warn = 1
mon data avail crit = 0
ms bind ipv6 = false

[mon]
mon data = $DIR/mon/\$cluster-\$id

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 4294967296
osd failsafe full ratio = .99
osd max object name len = 460
osd max object namespace len = 64

[client]
# Each CLI call gets its own socket and log so parallel calls do not fight over one.
admin socket = $DIR/run/\$cluster-\$name.\$pid.asok
log file = $DIR/log/\$name.\$pid.log

[client.rgw.imgup]
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$name.log
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $DIR/rgw
# No "rgw dns name": with one set, any other Host (localhost, a LAN name) is taken for a bucket.
rgw enable apis = s3, admin, notifications
rgw thread pool size = 64
# Deleted objects free their memstore space only when RGW's garbage collector runs (default: after
# 2 h). Test suites write and delete gigabytes; without this the OSD fills and every write hangs.
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
EOF
}

declare -A SPAWNED=()

# wait_for <what> <daemon> <command...>: polls the command, fails fast if the daemon exited.
wait_for() {
  local what="$1" daemon="$2" deadline=$((SECONDS + START_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    alive "${SPAWNED[$daemon]}" || die "$daemon exited while waiting for $what"
    ((SECONDS < deadline)) || die "timed out after ${START_TIMEOUT}s waiting for $what"
    sleep 0.5
  done
}

# Daemons run in the foreground (-f) in their own session, detached from this shell: a daemonizing
# radosgw blocks its parent for up to 5 minutes when it cannot reach the mon, while here every wait
# has our own timeout. radosgw writes no pid file in the foreground, so we keep our own.
spawn() {
  local name="$1"
  shift
  setsid nohup "$@" -f </dev/null >"$DIR/log/$name.out" 2>&1 &
  SPAWNED[$name]=$!
  echo $! >"$DIR/run/$name.pid"
}

osd_up() { ceph_cli osd stat -f json | grep -q '"num_up_osds":1'; }

start_cluster() {
  mkdir -p "$DIR"/{run,log,mon,osd/ceph-0,rgw,crash}
  local fsid osd_uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  write_conf "$fsid"
  # Not checked with auth = none, but mon --mkfs insists on a keyring file.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' >/dev/null

  log "starting mon"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
    >"$DIR/log/mon-mkfs.out" 2>&1 || die "ceph-mon --mkfs failed"
  spawn mon ceph-mon -c "$CONF" -i a
  wait_for "the mon" mon ceph_cli mon stat

  log "starting osd"
  [[ "$(ceph_cli osd create "$osd_uuid")" == 0 ]] || die "ceph osd create did not return id 0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1 ||
    die "ceph-osd --mkfs failed"
  spawn osd ceph-osd -c "$CONF" -i 0
  wait_for "the osd to be up" osd osd_up

  log "starting radosgw on $ENDPOINT"
  spawn rgw radosgw -c "$CONF" -n client.rgw.imgup
  wait_for "radosgw to answer on $ENDPOINT" rgw rgw_answers
}

setup_s3() {
  local out
  if ! out="$(timeout 60 radosgw-admin -c "$CONF" user create --uid imgup --display-name imgup \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" 2>&1)"; then
    grep -qi "exists" <<<"$out" || die "radosgw-admin user create failed: $out"
  fi
  [[ -d "$REPO/node_modules/@aws-sdk/client-s3" ]] || die "run npm ci first (scripts/local-s3-setup.ts needs the AWS SDK)"
  (cd "$REPO" && export_test_env && timeout 60 npx --no-install tsx scripts/local-s3-setup.ts) \
    >"$DIR/log/setup.out" 2>&1 || die "creating the bucket failed (scripts/local-s3-setup.ts)"
}

export_test_env() {
  export TEST_S3_ENDPOINT="$ENDPOINT" TEST_S3_REGION="$REGION" TEST_S3_ACCESS_KEY_ID="$ACCESS_KEY" \
    TEST_S3_SECRET_ACCESS_KEY="$SECRET_KEY" TEST_S3_BUCKET="$BUCKET"
}

stop_daemons() {
  local name pidfile pid deadline
  # RGW first, so it does not log errors about a vanished cluster while we tear it down.
  for name in rgw osd mon; do
    pidfile="$DIR/run/$name.pid"
    pid_alive "$pidfile" || continue
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done
}

cmd_start() {
  if [[ -f "$DIR/ready" ]] && running; then
    log "already running on $ENDPOINT"
    return 0
  fi
  install_if_missing
  command -v curl >/dev/null || die "curl is required"
  # Leftovers of a crashed or half-finished run: memstore data does not survive, start clean.
  if [[ -e "$DIR" ]]; then
    log "removing leftovers in $DIR"
    stop_daemons
    rm -rf "$DIR"
  fi
  if rgw_answers; then die "something else already answers on $ENDPOINT (set IMGUP_RGW_PORT)"; fi
  local t0=$SECONDS
  start_cluster
  setup_s3
  touch "$DIR/ready"
  log "S3 ready on $ENDPOINT (bucket $BUCKET) in $((SECONDS - t0))s"
}

cmd_stop() {
  if [[ -d "$DIR" ]]; then
    stop_daemons
    rm -rf "$DIR"
    log "stopped"
  else
    log "not running"
  fi
}

cmd_status() {
  if [[ -f "$DIR/ready" ]] && running; then
    echo "running on $ENDPOINT (dir $DIR)"
  else
    echo "not running"
    return 1
  fi
}

# The tests read TEST_S3_* (they make a bucket of their own per suite); imgup itself reads S3_*.
cmd_env() {
  case "${1:-}" in
  "")
    echo "export TEST_S3_ENDPOINT=$ENDPOINT TEST_S3_REGION=$REGION TEST_S3_ACCESS_KEY_ID=$ACCESS_KEY" \
      "TEST_S3_SECRET_ACCESS_KEY=$SECRET_KEY TEST_S3_BUCKET=$BUCKET"
    ;;
  --imgup)
    echo "export IMGUP_STORAGE=s3 S3_ENDPOINT=$ENDPOINT S3_REGION=$REGION S3_FORCE_PATH_STYLE=true" \
      "S3_ACCESS_KEY_ID=$ACCESS_KEY S3_SECRET_ACCESS_KEY=$SECRET_KEY S3_BUCKET=$BUCKET"
    ;;
  *)
    echo "usage: $0 env [--imgup]" >&2
    exit 2
    ;;
  esac
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env "${2:-}" ;;
*)
  echo "usage: $0 start|stop|status|env [--imgup]" >&2
  exit 2
  ;;
esac
