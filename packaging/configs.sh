#!/usr/bin/env bash
# Writes the configs the packages and the container install, made from the
# documented examples in config/ with the few values a service needs changed,
# so the examples stay the one place every key is explained:
#
#   agent.toml                the agent as a service: stdout carries alerts,
#                             link changes and losses but no heartbeats (its
#                             stdout goes to a log file or the journal)
#   collector.toml            the collector as a system service: data in
#                             /var/lib/hopwatch-collector, log file in
#                             /var/log/hopwatch-collector
#   collector-container.toml  the collector in a container: listens on every
#                             address of the container, logs to stderr only
#
# Usage: packaging/configs.sh OUTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"

# replace FILE OLD NEW: OLD must be a whole line of FILE, exactly once, so a
# change to the example that moves a value fails here instead of shipping an
# unchanged default.
replace() {
  local file=$1 old=$2 new=$3 count
  count=$(grep -cxF -- "$old" "$file" || true)
  if [ "$count" != 1 ]; then
    echo "configs.sh: expected the line '$old' once in $file, found it $count times;" \
      "update packaging/configs.sh to the example's new wording" >&2
    exit 1
  fi
  OLD=$old NEW=$new awk '$0 == ENVIRON["OLD"] { print ENVIRON["NEW"]; next } { print }' \
    "$file" >"$file.new"
  mv "$file.new" "$file"
}

cp config/agent.toml "$out/agent.toml"
replace "$out/agent.toml" \
  'events = ["alert", "link", "heartbeat", "loss"]' \
  'events = ["alert", "link", "loss"]'

cp config/collector.toml "$out/collector.toml"
replace "$out/collector.toml" \
  'data_dir = "./hopwatch-data"' \
  'data_dir = "/var/lib/hopwatch-collector"'
replace "$out/collector.toml" \
  'file = "hopwatch-collector.log"' \
  'file = "/var/log/hopwatch-collector/hopwatch-collector.log"'

cp config/collector.toml "$out/collector-container.toml"
replace "$out/collector-container.toml" \
  'agents_listen = "127.0.0.1:7000"' \
  'agents_listen = "0.0.0.0:7000"'
replace "$out/collector-container.toml" \
  'http_listen = "127.0.0.1:8080"' \
  'http_listen = "0.0.0.0:8080"'
replace "$out/collector-container.toml" \
  'data_dir = "./hopwatch-data"' \
  'data_dir = "/var/lib/hopwatch-collector"'
replace "$out/collector-container.toml" \
  'file = "hopwatch-collector.log"' \
  'file = ""'
