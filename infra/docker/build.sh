#!/usr/bin/env bash
# Build (and optionally push) the trainer image from the repository root.
#
#   bash infra/docker/build.sh                                   # builds katib-suite/trainer:dev
#   KATIB_SUITE_IMAGE=ghcr.io/me/katib-trainer:0.1.0 bash infra/docker/build.sh --push
#   bash infra/docker/build.sh --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/katib-trainer:0.1.0 --push
#   bash infra/docker/build.sh --base pytorch/pytorch:<tag>@sha256:<digest>    # pin the base by digest
#
# Pushing needs `docker login <registry>` first (for ECR:
#   aws ecr get-login-password | docker login --username AWS --password-stdin <account>.dkr.ecr.<region>.amazonaws.com).
# Then point experiments at the image: KATIB_SUITE_IMAGE is what infra/set-image.sh writes into them.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

image="${KATIB_SUITE_IMAGE:-katib-suite/trainer:dev}"
base=""
push=false
while [ $# -gt 0 ]; do
  case "$1" in
    --image) image="${2:?--image needs a value, e.g. --image ghcr.io/me/katib-trainer:0.1.0}"; shift 2 ;;
    --base) base="${2:?--base needs a value, e.g. --base pytorch/pytorch:<tag>@sha256:<digest>}"; shift 2 ;;
    --push) push=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
  esac
done

if ! command -v docker >/dev/null 2>&1; then
  echo "build.sh: docker is not installed or not on PATH; install Docker (https://docs.docker.com/get-docker/)" >&2
  exit 1
fi

root="$(cd "$(dirname "$0")/../.." && pwd)"
build_args=()
if [ -n "$base" ]; then
  build_args+=(--build-arg "BASE_IMAGE=$base")
fi

# BuildKit reads infra/docker/Dockerfile.dockerignore (the allow-list) for this Dockerfile.
DOCKER_BUILDKIT=1 docker build ${build_args[@]+"${build_args[@]}"} -f "$root/infra/docker/Dockerfile" -t "$image" "$root"
echo "built $image"

if [ "$push" = true ]; then
  docker push "$image"
  echo "pushed $image"
fi
