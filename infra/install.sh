#!/usr/bin/env bash
# Put the katib-suite platform on the cluster kubectl points at, at pinned versions. Idempotent: every step
# is an apply (server-side) or a create-if-missing, so re-running repairs a half-finished install.
#
#   bash infra/install.sh --target kind                 # what infra/kind/up.sh runs (MinIO as the S3)
#   bash infra/install.sh --target eks --region us-east-1 --bucket BUCKET \
#        --trainer-role-arn ARN --kserve-role-arn ARN   # `terraform output -raw install_command` prints this
#   add --context CTX to pick a kubeconfig context; --dry-run prints the plan and changes nothing.
#
# Installs: cert-manager, the Training Operator (standalone), Katib (standalone), KServe in RawDeployment
# mode with its cluster serving runtimes, then the suite's namespace (labelled for Katib's metrics
# collector), ServiceAccounts and the S3 Secret. kind adds MinIO with the bucket; eks adds NVIDIA's device
# plugin and IRSA annotations instead of keys. No credential is printed; on kind the MinIO root
# credentials are MINIO_ROOT_USER / MINIO_ROOT_PASSWORD if set, otherwise generated once and kept in the
# Secret minio/minio-root (re-runs reuse it).
set -euo pipefail

# --- pinned versions: one place ---------------------------------------------------------------------
CERT_MANAGER_VERSION=v1.16.3
TRAINING_OPERATOR_VERSION=v1.9.0
KATIB_VERSION=v0.19.0
KSERVE_VERSION=v0.15.2
NVIDIA_DEVICE_PLUGIN_VERSION=v0.17.0

CERT_MANAGER_URL="https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
TRAINING_OPERATOR_KUSTOMIZE="github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=${TRAINING_OPERATOR_VERSION}"
KATIB_KUSTOMIZE="github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=${KATIB_VERSION}"
KSERVE_URL="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
KSERVE_RUNTIMES_URL="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"
NVIDIA_DEVICE_PLUGIN_URL="https://raw.githubusercontent.com/NVIDIA/k8s-device-plugin/${NVIDIA_DEVICE_PLUGIN_VERSION}/deployments/static/nvidia-device-plugin.yml"

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=infra/names.env
. "$here/names.env"

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "install.sh: $*" >&2
  exit 2
}

target=""
context=""
dry_run=false
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
bucket="${KATIB_SUITE_BUCKET:-$KATIB_SUITE_DEFAULT_BUCKET}"
trainer_role_arn=""
kserve_role_arn=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="${2:?--target needs kind or eks}"; shift 2 ;;
    --context) context="${2:?--context needs a kubeconfig context name}"; shift 2 ;;
    --region) region="${2:?--region needs an AWS region, e.g. us-east-1}"; shift 2 ;;
    --bucket) bucket="${2:?--bucket needs a bucket name}"; shift 2 ;;
    --trainer-role-arn) trainer_role_arn="${2:?--trainer-role-arn needs an IAM role ARN}"; shift 2 ;;
    --kserve-role-arn) kserve_role_arn="${2:?--kserve-role-arn needs an IAM role ARN}"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1'; see --help" ;;
  esac
done

case "$target" in
  kind) ;;
  eks)
    [ -n "$region" ] || die "--target eks needs --region (the cluster's AWS region, e.g. us-east-1)"
    [ -n "$trainer_role_arn" ] && [ -n "$kserve_role_arn" ] \
      || die "--target eks needs --trainer-role-arn and --kserve-role-arn; run the line \`terraform -chdir=infra/terraform output -raw install_command\` prints"
    ;;
  *) die "--target must be one of [kind, eks]; got: '${target}'" ;;
esac

kubectl_args=()
if [ -n "$context" ]; then
  kubectl_args+=(--context "$context")
fi

k() {
  if [ "$dry_run" = true ]; then
    echo "+ kubectl ${kubectl_args[*]+${kubectl_args[*]}} $*"
  else
    kubectl ${kubectl_args[@]+"${kubectl_args[@]}"} "$@"
  fi
}

# Create-or-update an object kubectl can generate (namespace, secret, serviceaccount): idempotent, unlike create.
ensure() {
  if [ "$dry_run" = true ]; then
    echo "+ kubectl ${kubectl_args[*]+${kubectl_args[*]}} $* --dry-run=client -o yaml | kubectl apply --server-side --force-conflicts -f -"
  else
    k "$@" --dry-run=client -o yaml | k apply --server-side --force-conflicts -f -
  fi
}

step() {
  echo "==> $*"
}

# Apply that retries: a webhook installed a moment ago may not answer yet (KServe's runtimes, cert-manager).
apply_retry() {
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if k apply --server-side --force-conflicts "$@"; then
      return 0
    fi
    echo "    apply failed (attempt $attempt of 6); retrying in 10 s while webhooks start"
    sleep 10
  done
  die "kubectl apply $* kept failing; check \`kubectl get pods -A\` for pods that are not Running"
}

wait_deployments() {
  local namespace="$1"
  shift
  local name
  for name in "$@"; do
    k -n "$namespace" rollout status "deployment/$name" --timeout=10m
  done
}

# --- pre-flight ---------------------------------------------------------------------------------------
[ "$dry_run" = true ] || command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed; install it (https://kubernetes.io/docs/tasks/tools/)"
if [ "$dry_run" = false ] && ! k version --request-timeout=15s >/dev/null 2>&1; then
  die "cannot reach the Kubernetes API server of context '${context:-$(kubectl config current-context 2>/dev/null || echo none)}'; check \`kubectl cluster-info\` (kind: bash infra/kind/up.sh; EKS: the aws eks update-kubeconfig line from terraform output)"
fi

# --- platform -----------------------------------------------------------------------------------------
step "cert-manager ${CERT_MANAGER_VERSION}"
apply_retry -f "$CERT_MANAGER_URL"
wait_deployments cert-manager cert-manager cert-manager-cainjector cert-manager-webhook

if [ "$target" = eks ]; then
  step "EKS: default gp3 StorageClass (Katib's MySQL volume), NVIDIA device plugin ${NVIDIA_DEVICE_PLUGIN_VERSION}"
  k apply --server-side --force-conflicts -f "$here/eks/storageclass.yaml"
  # GPU nodes advertise nvidia.com/gpu through it; its DaemonSet tolerates the GPU nodes' taint.
  apply_retry -f "$NVIDIA_DEVICE_PLUGIN_URL"
fi

step "Training Operator ${TRAINING_OPERATOR_VERSION} (standalone, namespace kubeflow)"
apply_retry -k "$TRAINING_OPERATOR_KUSTOMIZE"
wait_deployments kubeflow training-operator

step "Katib ${KATIB_VERSION} (standalone, namespace kubeflow)"
apply_retry -k "$KATIB_KUSTOMIZE"
wait_deployments kubeflow katib-mysql katib-db-manager katib-controller katib-ui

step "KServe ${KSERVE_VERSION} (RawDeployment: plain Deployments and Services, no Knative or Istio)"
apply_retry -f "$KSERVE_URL"
wait_deployments kserve kserve-controller-manager
apply_retry -f "$KSERVE_RUNTIMES_URL"
k -n kserve patch configmap inferenceservice-config --type merge \
  -p '{"data":{"deploy":"{\"defaultDeploymentMode\":\"RawDeployment\"}"}}'

# --- S3 -----------------------------------------------------------------------------------------------
secret_env="$(mktemp)"
trap 'rm -f "$secret_env"' EXIT
chmod 600 "$secret_env"

if [ "$target" = kind ]; then
  step "MinIO (namespace minio) with bucket ${bucket}"
  ensure create namespace minio
  minio_user="${MINIO_ROOT_USER:-}"
  minio_password="${MINIO_ROOT_PASSWORD:-}"
  if [ -z "$minio_user" ] && [ "$dry_run" = false ] && k -n minio get secret minio-root >/dev/null 2>&1; then
    minio_user="$(k -n minio get secret minio-root -o jsonpath='{.data.MINIO_ROOT_USER}' | base64 -d)"
    minio_password="$(k -n minio get secret minio-root -o jsonpath='{.data.MINIO_ROOT_PASSWORD}' | base64 -d)"
  fi
  if [ -z "$minio_user" ]; then
    minio_user="katib-suite"
  fi
  if [ -z "$minio_password" ]; then
    minio_password="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  fi
  printf 'MINIO_ROOT_USER=%s\nMINIO_ROOT_PASSWORD=%s\n' "$minio_user" "$minio_password" >"$secret_env"
  ensure -n minio create secret generic minio-root --from-env-file="$secret_env"
  k apply -f "$here/kind/manifests/minio.yaml"
  wait_deployments minio minio
  # mc runs inside the MinIO pod with the pod's own credentials: nothing secret crosses the command line.
  # shellcheck disable=SC2016  # $MINIO_ROOT_* expand in the pod's shell, not here
  k -n minio exec deploy/minio -- sh -c \
    'export MC_HOST_local="http://${MINIO_ROOT_USER}:${MINIO_ROOT_PASSWORD}@127.0.0.1:9000" && mc mb --ignore-existing "local/$1"' \
    _ "$bucket"
  s3_host="minio.minio.svc.cluster.local:9000"
  s3_region="us-east-1"
  printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nAWS_ENDPOINT_URL=http://%s\nAWS_DEFAULT_REGION=%s\n' \
    "$minio_user" "$minio_password" "$s3_host" "$s3_region" >"$secret_env"
  s3_https=0
else
  # IRSA: pods get a web identity token; the Secret carries no keys, only the region boto3 needs.
  s3_host="s3.${region}.amazonaws.com"
  s3_region="$region"
  printf 'AWS_DEFAULT_REGION=%s\nAWS_REGION=%s\n' "$region" "$region" >"$secret_env"
  s3_https=1
fi

# --- the suite's namespace ----------------------------------------------------------------------------
ns="$KATIB_SUITE_NAMESPACE"
step "namespace ${ns} (Katib metrics collection enabled), ServiceAccounts, Secret ${KATIB_SUITE_S3_SECRET}"
ensure create namespace "$ns"
k label namespace "$ns" --overwrite katib.kubeflow.org/metrics-collector-injection=enabled

ensure -n "$ns" create secret generic "$KATIB_SUITE_S3_SECRET" --from-env-file="$secret_env"
# KServe's storage initializer reads these from the Secret attached to the predictor's ServiceAccount...
k -n "$ns" annotate secret "$KATIB_SUITE_S3_SECRET" --overwrite \
  "serving.kserve.io/s3-endpoint=${s3_host}" "serving.kserve.io/s3-usehttps=${s3_https}" \
  "serving.kserve.io/s3-region=${s3_region}" "serving.kserve.io/s3-verifyssl=${s3_https}" \
  "serving.kserve.io/s3-useanoncredential=false"

ensure -n "$ns" create serviceaccount "$KATIB_SUITE_TRAINER_SA"
ensure -n "$ns" create serviceaccount "$KATIB_SUITE_KSERVE_SA"
# ...and, with an IRSA role on the ServiceAccount, from the ServiceAccount's own annotations.
k -n "$ns" annotate serviceaccount "$KATIB_SUITE_KSERVE_SA" --overwrite \
  "serving.kserve.io/s3-endpoint=${s3_host}" "serving.kserve.io/s3-usehttps=${s3_https}" \
  "serving.kserve.io/s3-region=${s3_region}" "serving.kserve.io/s3-verifyssl=${s3_https}" \
  "serving.kserve.io/s3-useanoncredential=false"
k -n "$ns" patch serviceaccount "$KATIB_SUITE_KSERVE_SA" --type merge \
  -p "{\"secrets\":[{\"name\":\"${KATIB_SUITE_S3_SECRET}\"}]}"
if [ "$target" = eks ]; then
  k -n "$ns" annotate serviceaccount "$KATIB_SUITE_TRAINER_SA" --overwrite "eks.amazonaws.com/role-arn=${trainer_role_arn}"
  k -n "$ns" annotate serviceaccount "$KATIB_SUITE_KSERVE_SA" --overwrite "eks.amazonaws.com/role-arn=${kserve_role_arn}"
fi

step "done: Katib ${KATIB_VERSION}, Training Operator ${TRAINING_OPERATOR_VERSION}, KServe ${KSERVE_VERSION} on target ${target}; experiments go to namespace ${ns}, checkpoints to s3://${bucket}/${KATIB_SUITE_TRIALS_PREFIX}/"
