"""scripts/deployment_check.py: a follower Deployment runs one pod at a time and probes its metrics port.

Usage: deployment_check.py FILE...   (multi-document YAML, e.g. `kubectl kustomize` output).
For every Deployment: `replicas: 1` and `strategy: {type: Recreate}` (two followers must never
write one location, not even during a rollout); `terminationGracePeriodSeconds` above
Kubernetes' default 30 s (the last checkpoint is published after SIGTERM); and for each
container that serves `--metrics-listen HOST:PORT`: a named containerPort with that number, a
readiness and a liveness probe that GET /healthz on it (by name or number), a liveness probe
that tolerates at least 5 minutes of failures (a slow first catch-up must not be killed), and
the `prometheus.io/scrape: "true"` / `prometheus.io/port` annotations on that port. Prints one
line per problem; exit 1 if any. Run by scripts/validate-manifests.sh (PyYAML comes with
kubernetes-validate there).
"""
import sys

import yaml

DEFAULT_GRACE_SECONDS = 30
MIN_LIVENESS_TOLERANCE_SECONDS = 300


def metrics_port(args):
    """The port of `--metrics-listen HOST:PORT` (or `--metrics-listen=HOST:PORT`), or None."""
    for i, arg in enumerate(args):
        value = None
        if arg == "--metrics-listen" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--metrics-listen="):
            value = arg.split("=", 1)[1]
        if value is not None:
            port = value.rsplit(":", 1)[-1]
            return int(port) if port.isdigit() else None
    return None


def probe_problems(what, name, probe, port, port_name):
    if not probe:
        return [f"{what}: no {name}"]
    get = probe.get("httpGet") or {}
    found = []
    if get.get("path") != "/healthz":
        found.append(f"{what}: {name} does not GET /healthz")
    if get.get("port") not in (port, port_name):
        found.append(f"{what}: {name} port {get.get('port')!r} is not the metrics port {port}")
    return found


def container_problems(what, container, annotations):
    port = metrics_port(container.get("args") or [])
    if port is None:
        return [f"{what}: no --metrics-listen HOST:PORT in its args (nothing to probe)"]
    found = []
    named = [p for p in container.get("ports") or [] if p.get("containerPort") == port]
    port_name = named[0].get("name") if named else None
    if not port_name:
        found.append(f"{what}: no named containerPort {port} (the --metrics-listen port)")
    for name in ("readinessProbe", "livenessProbe"):
        found += probe_problems(what, name, container.get(name), port, port_name)
    liveness = container.get("livenessProbe") or {}
    tolerated = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    if tolerated < MIN_LIVENESS_TOLERANCE_SECONDS:
        found.append(
            f"{what}: livenessProbe restarts after {tolerated} s of failures, "
            f"less than {MIN_LIVENESS_TOLERANCE_SECONDS} s (a slow first catch-up would be killed)"
        )
    if annotations.get("prometheus.io/scrape") != "true":
        found.append(f"{what}: no prometheus.io/scrape: \"true\" annotation")
    if annotations.get("prometheus.io/port") != str(port):
        found.append(f"{what}: prometheus.io/port is not {port}")
    return found


def problems(documents, source):
    found = []
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "Deployment":
            continue
        what = f"{source}: Deployment {doc.get('metadata', {}).get('name')}"
        spec = doc.get("spec") or {}
        if spec.get("replicas") != 1:
            found.append(f"{what}: replicas must be 1, not {spec.get('replicas')!r}")
        if (spec.get("strategy") or {}).get("type") != "Recreate":
            found.append(f"{what}: strategy.type must be Recreate (never two pods at once)")
        template = spec.get("template") or {}
        pod = template.get("spec") or {}
        grace = pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        if grace <= DEFAULT_GRACE_SECONDS:
            found.append(
                f"{what}: terminationGracePeriodSeconds {grace} leaves no room above the "
                f"default {DEFAULT_GRACE_SECONDS} s for the last checkpoint"
            )
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        for container in pod.get("containers") or []:
            found += container_problems(
                f"{what} container {container.get('name')}", container, annotations
            )
    return found


def main(files):
    found = []
    for path in files:
        with open(path) as f:
            found += problems(list(yaml.safe_load_all(f)), path)
    for line in found:
        print(f"deployment_check: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
