#!/usr/bin/env bash
# Delete the kind cluster infra/kind/up.sh made, with everything in it (MinIO's data included).
#   bash infra/kind/down.sh            # KIND_CLUSTER selects another cluster name (default katib-suite)
# The trainer image stays in the local Docker cache: `docker image rm katib-suite/trainer:dev` removes it.
set -euo pipefail

cluster="${KIND_CLUSTER:-katib-suite}"
if ! command -v kind >/dev/null 2>&1; then
  echo "down.sh: kind is not installed, so there is no kind cluster to delete" >&2
  exit 2
fi
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind delete cluster --name "$cluster"
else
  echo "no kind cluster named ${cluster}; nothing to delete"
fi
