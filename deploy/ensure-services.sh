#!/usr/bin/env bash
# Make sure the services the tests and the distributed mode need are answering:
# RabbitMQ (with the management plugin, which nameko's rabbit_config test fixture uses), PostgreSQL and Redis
# (the abuse limits' shared storage).
# Installs them with apt-get on a machine that has neither; starts them when they are stopped.
set -euo pipefail

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
answers() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for() {  # port, name, seconds
  for _ in $(seq 1 "$3"); do answers "$1" && return 0; sleep 1; done
  echo "ensure-services: $2 is not answering on port $1" >&2; return 1
}

if ! answers 5672; then
  command -v rabbitmq-server >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq rabbitmq-server; }
  echo "ensure-services: starting RabbitMQ"
  $SUDO rabbitmq-server -detached || true
  wait_for 5672 RabbitMQ 90
fi
if ! answers 15672; then
  echo "ensure-services: enabling the RabbitMQ management plugin"
  $SUDO rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_for 15672 "RabbitMQ management" 60
fi

if ! answers 5432; then
  command -v pg_ctlcluster >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql; }
  echo "ensure-services: starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_for 5432 PostgreSQL 60
fi
if ! answers 6379; then
  command -v redis-server >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server; }
  echo "ensure-services: starting Redis"
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 >/dev/null || true
  wait_for 6379 Redis 30
fi
echo "ensure-services: RabbitMQ, its management plugin, PostgreSQL and Redis answer"
