#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ answer on loopback; start them with their standard commands if not.
# Fails loudly (exit 1) when either cannot be reached: the suite never skips for a missing server.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
  for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done
  return 1
}

if ! port_open 5432; then
  echo "PostgreSQL is down; starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  wait_port 5432 30 || { echo "FATAL: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

# The suite keeps a few engines per service open for the whole run while the end-to-end tests start
# whole platforms beside them: PostgreSQL's default of 100 connections is too tight for that.
want_connections=300
have_connections=$(psql -h 127.0.0.1 -U postgres -tAc "SHOW max_connections" 2>/dev/null || echo 0)
if [ "${have_connections:-0}" -lt "$want_connections" ] && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL allows $have_connections connections; raising it to $want_connections (restart)"
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = $want_connections" || true
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart || true
  wait_port 5432 30 || { echo "FATAL: PostgreSQL is not reachable on 127.0.0.1:5432 after its restart" >&2; exit 1; }
fi

if ! port_open 5672; then
  echo "RabbitMQ is down; starting it"
  if command -v rabbitmq-server >/dev/null 2>&1; then
    rabbitmq-server -detached || true
  fi
  wait_port 5672 90 || { echo "FATAL: RabbitMQ is not reachable on 127.0.0.1:5672" >&2; exit 1; }
fi
# The port opens before the broker accepts AMQP sessions; wait for the application itself.
if command -v rabbitmqctl >/dev/null 2>&1; then
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || { echo "FATAL: RabbitMQ did not finish starting" >&2; exit 1; }
fi
echo "PostgreSQL and RabbitMQ are up"
