#!/usr/bin/env bash
# The distributed mode on one machine: each service its own process against RabbitMQ and PostgreSQL,
# and the gateway in front of them at one base URL. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
export AMQP_URI="${AMQP_URI:-pyamqp://guest:guest@127.0.0.1:5672//}"
export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
PORT="${MAWAEED_PORT:-8000}"
export AVAILABILITY_URL="http://127.0.0.1:$((PORT + 1))" BOOKING_URL="http://127.0.0.1:$((PORT + 2))"
export QUEUE_URL="http://127.0.0.1:$((PORT + 3))" NOTIFICATIONS_URL="http://127.0.0.1:$((PORT + 4))"
export WEB_URL="http://127.0.0.1:$((PORT + 5))" MAWAEED_API_URL="http://127.0.0.1:$PORT"   # the pages call the API
export MAWAEED_FEED_URL="http://127.0.0.1:$PORT"   # subscribers catch up through the gateway
export MAWAEED_PUBLIC_URL="${MAWAEED_PUBLIC_URL:-http://localhost:$PORT}"   # feedback links; the trial issuer
# Without MAWAEED_OIDC_ISSUER every process signs and checks tokens with the development key under
# MAWAEED_DATA_DIR (./var): one folder and one public URL for all of them (`mawaeed token issue` uses the same).
export MAWAEED_DATA_DIR="${MAWAEED_DATA_DIR:-./var}"
export MAWAEED_TRUSTED_PROXIES="${MAWAEED_TRUSTED_PROXIES:-127.0.0.1}"   # the gateway: its X-Forwarded-For is believed

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 1))" .venv/bin/mawaeed run availability & pids+=($!)
WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 2))" .venv/bin/mawaeed run booking & pids+=($!)
WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 3))" .venv/bin/mawaeed run queue & pids+=($!)
# More replicas of the hot services (MAWAEED_BOOKING_REPLICAS=2 ...): booking's on PORT+11.., the queue's on
# PORT+21..; the gateway spreads requests over them (the URLs in BOOKING_URL / QUEUE_URL, separated by commas).
for ((i = 2; i <= ${MAWAEED_BOOKING_REPLICAS:-1}; i++)); do
  BOOKING_URL="$BOOKING_URL,http://127.0.0.1:$((PORT + 9 + i))"
  WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 9 + i))" .venv/bin/mawaeed run booking & pids+=($!)
done
for ((i = 2; i <= ${MAWAEED_QUEUE_REPLICAS:-1}; i++)); do
  QUEUE_URL="$QUEUE_URL,http://127.0.0.1:$((PORT + 19 + i))"
  WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 19 + i))" .venv/bin/mawaeed run queue & pids+=($!)
done
WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 4))" .venv/bin/mawaeed run notifications & pids+=($!)
WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 5))" .venv/bin/mawaeed run web & pids+=($!)
export INSIGHTS_URL="http://127.0.0.1:$((PORT + 6))"; WEB_SERVER_ADDRESS="127.0.0.1:$((PORT + 6))" .venv/bin/mawaeed run insights & pids+=($!)
# The gateway prints "Mawaeed is ready: http://localhost:PORT/" once the whole suite is: that is the URL to open
# (each service's own line only says it is ready behind the gateway). Loopback only unless GATEWAY_ADDRESS says.
.venv/bin/mawaeed gateway --listen "${GATEWAY_ADDRESS:-127.0.0.1:$PORT}" & pids+=($!)
wait -n
