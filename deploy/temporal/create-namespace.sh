#!/bin/sh
# Registers Keel's Temporal namespace once the frontend answers (a no-op when it exists).
set -eu
namespace=${DEFAULT_NAMESPACE:-default}
until temporal operator cluster health --address "${TEMPORAL_ADDRESS}"; do
  echo "waiting for Temporal at ${TEMPORAL_ADDRESS}"
  sleep 3
done
temporal operator namespace describe --namespace "${namespace}" --address "${TEMPORAL_ADDRESS}" \
  || temporal operator namespace create --namespace "${namespace}" --retention 72h \
       --address "${TEMPORAL_ADDRESS}"
