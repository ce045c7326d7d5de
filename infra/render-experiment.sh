#!/usr/bin/env bash
# Print an experiment YAML ready for a cluster: the placeholder trainer image replaced by yours, and
# (optionally) the default bucket in s3:// paths replaced by yours. The file itself is not changed.
#
#   KATIB_SUITE_IMAGE=ghcr.io/me/katib-trainer:0.1.0 bash infra/render-experiment.sh experiments/roberta-large-yahoo.yaml > /tmp/exp.yaml
#   bash infra/render-experiment.sh FILE --image IMAGE [--bucket BUCKET] > /tmp/exp.yaml
#   katib experiment submit /tmp/exp.yaml --backend cluster
#
# KATIB_SUITE_IMAGE / KATIB_SUITE_BUCKET are read when the flags are absent. On EKS the bucket is
# `terraform -chdir=infra/terraform output -raw bucket`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=infra/names.env
. "$here/names.env"

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

file=""
image="${KATIB_SUITE_IMAGE:-}"
bucket="${KATIB_SUITE_BUCKET:-$KATIB_SUITE_DEFAULT_BUCKET}"
while [ $# -gt 0 ]; do
  case "$1" in
    --image) image="${2:?--image needs a value, e.g. --image ghcr.io/me/katib-trainer:0.1.0}"; shift 2 ;;
    --bucket) bucket="${2:?--bucket needs a value, e.g. --bucket my-models-bucket}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "render-experiment.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    *) file="$1"; shift ;;
  esac
done

if [ -z "$file" ] || [ ! -f "$file" ]; then
  echo "render-experiment.sh: no experiment file '${file}'; pass one, e.g. experiments/roberta-large-yahoo.yaml" >&2
  exit 2
fi
if [ -z "$image" ] || [ "$image" = "$KATIB_SUITE_PLACEHOLDER_IMAGE" ]; then
  echo "render-experiment.sh: no trainer image set; build and push one (bash infra/docker/build.sh --image REGISTRY/katib-trainer:TAG --push), then export KATIB_SUITE_IMAGE=REGISTRY/katib-trainer:TAG or pass --image" >&2
  exit 2
fi
# The values go into sed replacements: refuse characters that would change the expression.
for value in "$image" "$bucket"; do
  case "$value" in
    *[!A-Za-z0-9._:/@-]*) echo "render-experiment.sh: '$value' has characters no image or bucket name has; check it" >&2; exit 2 ;;
  esac
done
if ! grep -q "image: $KATIB_SUITE_PLACEHOLDER_IMAGE" "$file"; then
  echo "render-experiment.sh: $file names no placeholder image ($KATIB_SUITE_PLACEHOLDER_IMAGE); it already names its own, submit it as it is" >&2
  exit 2
fi

escape() { printf '%s' "$1" | sed 's/[.]/\\./g'; }
sed -e "s|image: $(escape "$KATIB_SUITE_PLACEHOLDER_IMAGE")\( .*\)\{0,1\}\$|image: $image|" \
    -e "s|s3://$(escape "$KATIB_SUITE_DEFAULT_BUCKET")/|s3://$bucket/|g" \
    "$file"
