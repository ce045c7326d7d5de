#!/usr/bin/env bash
# The whole cluster path on one machine with Docker, idempotent (re-run it after any failure):
#   1. a kind cluster (infra/kind/cluster.yaml)            4. the quickstart Experiment on Katib
#   2. the platform (infra/install.sh --target kind)        5. its best trial promoted to MinIO and
#   3. the trainer image, built and loaded into kind           deployed as a KServe InferenceService
#
#   bash infra/kind/up.sh                 # needs docker, kind (v0.27+), kubectl, and `bash .ci/setup` done
#   bash infra/kind/up.sh --no-run        # stop after step 3 (platform + image only)
#   bash infra/kind/down.sh               # delete everything
#
# Environment: KATIB_SUITE_IMAGE (default katib-suite/trainer:dev, loaded into kind, never pushed),
# MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (default: generated once, kept in the Secret minio/minio-root),
# PYTHON (default .venv/bin/python), KIND_CLUSTER (default katib-suite).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=infra/names.env
. "$root/infra/names.env"

cluster="${KIND_CLUSTER:-katib-suite}"
context="kind-${cluster}"
image="${KATIB_SUITE_IMAGE:-katib-suite/trainer:dev}"
python="${PYTHON:-$root/.venv/bin/python}"
ns="$KATIB_SUITE_NAMESPACE"
bucket="$KATIB_SUITE_DEFAULT_BUCKET"
experiment=quickstart
run=true

die() {
  echo "up.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --no-run) run=false; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1'; see --help" ;;
  esac
done

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed; see infra/README section 'kind' (docker: https://docs.docker.com/get-docker/, kind: https://kind.sigs.k8s.io/, kubectl: https://kubernetes.io/docs/tasks/tools/)"
done
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable; start Docker (or add your user to the docker group)"
[ -x "$python" ] || die "no Python environment at $python; run \`bash .ci/setup\` first or set PYTHON=/path/to/python with katib-suite installed"

echo "==> 1. kind cluster ${cluster}"
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "    exists; reusing it"
else
  kind create cluster --name "$cluster" --config "$here/cluster.yaml" --wait 5m
fi

echo "==> 2. platform"
bash "$root/infra/install.sh" --target kind --context "$context" --bucket "$bucket"

echo "==> 3. trainer image ${image}"
bash "$root/infra/docker/build.sh" --image "$image"
kind load docker-image "$image" --name "$cluster"

if [ "$run" = false ]; then
  echo "==> platform ready; submit with: KATIB_SUITE_IMAGE=$image bash infra/render-experiment.sh infra/kind/quickstart.yaml > /tmp/q.yaml && katib experiment submit /tmp/q.yaml --backend cluster --context $context"
  exit 0
fi

echo "==> 4. Experiment ${experiment} in namespace ${ns}"
rendered="$(mktemp -d)"
pf_pid=""
cleanup() {
  if [ -n "$pf_pid" ]; then
    kill "$pf_pid" 2>/dev/null || true
  fi
  rm -rf "$rendered"
}
trap cleanup EXIT
bash "$root/infra/render-experiment.sh" "$here/quickstart.yaml" --image "$image" --bucket "$bucket" >"$rendered/quickstart.yaml"
if kubectl --context "$context" -n "$ns" get experiment "$experiment" >/dev/null 2>&1; then
  echo "    exists; waiting for it (to start over: katib experiment delete $experiment --backend cluster --context $context)"
else
  (cd "$root" && "$python" -m experiments.cli experiment submit "$rendered/quickstart.yaml" \
    --backend cluster --namespace "$ns" --context "$context")
fi
kubectl --context "$context" -n "$ns" wait "experiment/$experiment" --for=condition=Succeeded --timeout=60m \
  || die "experiment $experiment did not succeed in 60 min; see \`katib experiment status $experiment --backend cluster --context $context\`"
(cd "$root" && "$python" -m experiments.cli experiment status "$experiment" --backend cluster --namespace "$ns" --context "$context")

echo "==> 5. promote the best trial to s3://${bucket}/${KATIB_SUITE_MODELS_PREFIX}/${experiment}/ and deploy it"
# promote-best runs here and reads the checkpoints through a port-forward to MinIO, with the same
# credentials the trials used; they go into this process's environment only, never onto a command line.
local_port=19000
kubectl --context "$context" -n minio port-forward svc/minio "${local_port}:9000" >/dev/null 2>&1 &
pf_pid=$!
for _ in $(seq 1 30); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${local_port}") 2>/dev/null; then
    break
  fi
  sleep 1
done
secret_field() {
  kubectl --context "$context" -n "$ns" get secret "$KATIB_SUITE_S3_SECRET" -o "jsonpath={.data.$1}" | base64 -d
}
AWS_ACCESS_KEY_ID="$(secret_field AWS_ACCESS_KEY_ID)"
AWS_SECRET_ACCESS_KEY="$(secret_field AWS_SECRET_ACCESS_KEY)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_ENDPOINT_URL="http://127.0.0.1:${local_port}" AWS_DEFAULT_REGION=us-east-1
(cd "$root" && "$python" -m serving.cli "$experiment" --backend cluster --namespace "$ns" --context "$context" \
  --to "s3://${bucket}/${KATIB_SUITE_MODELS_PREFIX}/${experiment}" --deploy)

echo "==> done. The model answers inside the cluster; from here:"
echo "    kubectl --context $context -n $ns port-forward svc/${experiment}-predictor 8080:80"
echo "    curl -s localhost:8080/v2/models/${experiment}/infer -H 'Content-Type: application/json' -d '{\"inputs\": [{\"name\": \"input-0\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [\"Who won the world cup?\"]}]}'"
