#!/usr/bin/env bash
# The one test command (README, and .ci/run calls it): installs Flare and its test
# dependencies into .venv, installs the real servers the integration tests start
# (etcd, Redis, PostgreSQL, Kafka, SeaweedFS for S3; tests/infra), then runs the whole suite.
# This is the only place anything is installed: collecting tests installs nothing, and the
# fixtures start (never install) servers when a test first needs one.
# Extra arguments go to pytest: `bash tests/run.sh tests/e2e -k chat`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

collect_only=0
for arg in "$@"; do
  case "$arg" in --collect-only|--co) collect_only=1 ;; esac
done
if [ "${FLARE_SKIP_SERVERS:-0}" != "1" ] && [ "$collect_only" = 0 ]; then
  .venv/bin/python -m tests.infra install
fi

set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
