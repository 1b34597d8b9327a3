"""scripts/rbac_check.py: every RBAC rule on pods, pods/exec or secrets names its resources.

Usage: rbac_check.py [--no-pod-create] FILE...   (multi-document YAML, e.g. `kubectl kustomize`
output). For every Role and ClusterRole, a rule that reaches pods (or a pod subresource such as
pods/exec), secrets or `*` in the core API group must list `resourceNames`, with one exception:
a rule whose only verb is `create` on `pods`, because RBAC cannot limit `create` by name (a
create request has no name in its URL). `--no-pod-create` refuses that exception too (the
default install: no nightly job creates pods). Prints one line per problem; exit 1 if any.
Run by scripts/validate-manifests.sh (PyYAML comes with kubernetes-validate there).
"""
import sys

import yaml

SENSITIVE = {"pods", "secrets", "*"}


def problems(documents, source, pod_create_allowed):
    found = []
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") not in ("Role", "ClusterRole"):
            continue
        role = f"{source}: {doc['kind']} {doc.get('metadata', {}).get('name')}"
        for number, rule in enumerate(doc.get("rules") or [], 1):
            groups = rule.get("apiGroups") or []
            if "" not in groups and "*" not in groups:
                continue
            touched = sorted(
                r for r in rule.get("resources") or [] if r.split("/")[0] in SENSITIVE
            )
            if not touched:
                continue
            verbs = sorted(rule.get("verbs") or [])
            what = f"{role} rule {number} ({', '.join(verbs)} on {', '.join(touched)})"
            if verbs == ["create"] and touched == ["pods"]:
                if not pod_create_allowed:
                    found.append(f"{what}: creating pods is not for the default install")
                elif rule.get("resourceNames"):
                    found.append(f"{what}: resourceNames never match a create request")
                continue
            if not rule.get("resourceNames"):
                found.append(f"{what}: no resourceNames; name the pods or secrets it may touch")
    return found


def main(args):
    pod_create_allowed = "--no-pod-create" not in args
    files = [a for a in args if a != "--no-pod-create"]
    found = []
    for path in files:
        with open(path) as f:
            found += problems(list(yaml.safe_load_all(f)), path, pod_create_allowed)
    for line in found:
        print(f"rbac_check: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
