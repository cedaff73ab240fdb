#!/bin/sh
# Installs and starts the PostgreSQL server that tests/test_backends.py and the scale-out tutorial run against,
# on a Debian or Ubuntu machine (as root, or through sudo). Safe to run again: it installs, creates and starts
# only what is missing. Prints the catalog URL on stdout (everything else goes to stderr), so that
#   export LEPTONHUB_TEST_POSTGRES=$(sh .ci/services.sh)
# points the tests at it.
set -eu
ROLE=${LEPTONHUB_PG_ROLE:-leptonhub}
PASSWORD=${LEPTONHUB_PG_PASSWORD:-leptonhub}
DB=${LEPTONHUB_PG_DB:-leptonhub_test}
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
say() { echo "services: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  say "installing PostgreSQL (apt-get install postgresql)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi
cluster=$(pg_lsclusters -h | awk '$2 == "main" {print $1; exit}')
if [ -z "$cluster" ]; then
  cluster=$(ls /usr/lib/postgresql | sort -n | tail -1)
  say "creating cluster $cluster/main"
  $SUDO pg_createcluster "$cluster" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$cluster" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  say "starting PostgreSQL $cluster/main"
  $SUDO pg_ctlcluster "$cluster" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$cluster" '$1 == v && $2 == "main" {print $3}')
psql() { $SUDO -u postgres psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }
[ -n "$SUDO" ] || psql() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }
i=0; until psql -c 'SELECT 1' >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -le 30 ] || { say "PostgreSQL $cluster/main did not accept connections within 30 s; see /var/log/postgresql/"; exit 1; }
  sleep 1
done
if [ "$(psql -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  say "creating role $ROLE"
  psql -c "CREATE ROLE \"$ROLE\" LOGIN PASSWORD '$PASSWORD'"
fi
if [ "$(psql -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  say "creating database $DB"
  psql -c "CREATE DATABASE \"$DB\" OWNER \"$ROLE\""
fi
say "PostgreSQL $cluster/main is up on port $port"
echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$port/$DB"
