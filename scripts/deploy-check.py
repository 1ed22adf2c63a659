#!/usr/bin/env python3
"""Checks the deployment files under deploy/ that no tool here validates fully.

- every YAML file parses, and the Grafana dashboard JSON parses;
- deploy/k8s: each Deployment has requests and a non-root security context;
  the hub has /readyz readiness and /healthz liveness probes on its port, and a
  terminationGracePeriodSeconds above its drain timeout (read from the hub
  ConfigMap's TOML); every PodDisruptionBudget and Service selects a
  Deployment's pods;
- deploy/compose.yaml: the services the stack needs exist, the hub's grace
  period exceeds its drain, and every file it mounts exists in the repository
  (or is written by deploy/compose/setup.sh);
- every metric the alert rules and the dashboard use is printed with
  --list-metrics (for reconciling names with the code).

Exit status 1 with one line per problem. Needs PyYAML (python3-yaml).
"""

import json
import pathlib
import re
import sys
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
problems = []


def problem(msg):
    problems.append(msg)


def load_all(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(f"{path.relative_to(ROOT)}: not YAML: {e}")
        return []


def drain_ms_from(configmaps):
    for cm in configmaps:
        text = cm.get("data", {}).get("hub.toml")
        if text:
            return tomllib.loads(text).get("shutdown", {}).get("drain_timeout_ms", 10_000)
    return 10_000  # the hub's default (hub/src/config.rs ShutdownConfig)


def check_k8s():
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "nats-values.yaml":  # Helm values, not a manifest
            load_all(path)
            continue
        for d in load_all(path):
            docs.append((path.name, d))
    by_kind = {}
    for name, d in docs:
        if "kind" not in d or "apiVersion" not in d:
            problem(f"k8s/{name}: a document without kind/apiVersion")
            continue
        by_kind.setdefault(d["kind"], []).append((name, d))
    kust = [d for _, d in by_kind.get("Kustomization", [])]
    if kust:
        listed = set(kust[0].get("resources", []))
        for path in (DEPLOY / "k8s").glob("*.yaml"):
            if path.name not in listed and path.name not in ("kustomization.yaml", "nats-values.yaml"):
                problem(f"k8s/{path.name}: not listed in kustomization.yaml resources")
    drain_ms = drain_ms_from([d for _, d in by_kind.get("ConfigMap", [])])
    pod_labels = []
    for name, d in by_kind.get("Deployment", []):
        meta = d.get("metadata", {}).get("name", "?")
        spec = d.get("spec", {})
        tmpl = spec.get("template", {})
        labels = tmpl.get("metadata", {}).get("labels", {})
        selector = spec.get("selector", {}).get("matchLabels", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problem(f"k8s/{name}: {meta}: selector does not match the pod labels")
        pod_labels.append(labels)
        pod = tmpl.get("spec", {})
        sc = pod.get("securityContext", {})
        if not sc.get("runAsNonRoot"):
            problem(f"k8s/{name}: {meta}: runAsNonRoot is not set")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        for c in pod.get("containers", []):
            req = c.get("resources", {}).get("requests", {})
            if "cpu" not in req or "memory" not in req:
                problem(f"k8s/{name}: {meta}/{c.get('name')}: no cpu and memory requests")
            if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                problem(f"k8s/{name}: {meta}/{c.get('name')}: allowPrivilegeEscalation is not false")
            if "hub" in c.get("args", [])[:1]:
                ready = c.get("readinessProbe", {}).get("httpGet", {})
                live = c.get("livenessProbe", {}).get("httpGet", {})
                if ready.get("path") != "/readyz":
                    problem(f"k8s/{name}: the hub's readiness probe is not GET /readyz")
                if live.get("path") != "/healthz":
                    problem(f"k8s/{name}: the hub's liveness probe is not GET /healthz")
                pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
                if grace * 1000 <= drain_ms + pre * 1000:
                    problem(
                        f"k8s/{name}: terminationGracePeriodSeconds {grace} is not above the "
                        f"hub's drain ({drain_ms} ms) plus preStop ({pre} s)"
                    )
    if not any(labels.get("app.kubernetes.io/component") == "hub" for labels in pod_labels):
        problem("k8s: no hub Deployment")

    def selects(selector):
        return any(all(labels.get(k) == v for k, v in selector.items()) for labels in pod_labels)

    for name, d in by_kind.get("PodDisruptionBudget", []):
        sel = d.get("spec", {}).get("selector", {}).get("matchLabels", {})
        if not sel or not selects(sel):
            problem(f"k8s/{name}: PodDisruptionBudget {d['metadata']['name']} selects no Deployment's pods")
    for name, d in by_kind.get("Service", []):
        sel = d.get("spec", {}).get("selector", {})
        if not sel or not selects(sel):
            problem(f"k8s/{name}: Service {d['metadata']['name']} selects no Deployment's pods")
    return drain_ms


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)", str(text))
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return n / 1000 if unit == "ms" else n * (60 if unit == "m" else 1)


def check_compose(drain_ms):
    path = DEPLOY / "compose.yaml"
    docs = load_all(path)
    if not docs:
        problem("compose.yaml: empty")
        return
    services = docs[0].get("services", {})
    for needed in ("nats-1", "nats-2", "nats-3", "hub-1", "hub-2", "ingest", "notify", "proxy", "prometheus", "grafana"):
        if needed not in services:
            problem(f"compose.yaml: no service {needed}")
    for name, svc in services.items():
        if name.startswith("hub"):
            grace = seconds(svc.get("stop_grace_period", "10s"))
            if grace is None or grace * 1000 <= drain_ms:
                problem(f"compose.yaml: {name}: stop_grace_period is not above the drain ({drain_ms} ms)")
        if name == "ingest" and svc.get("environment", {}).get("SAPHA_REPLICAS") != "3":
            problem("compose.yaml: ingest does not create the stream at R3 (SAPHA_REPLICAS)")
        written_by_setup = ("compose/certs", "compose/ingest-tokens", "compose/notify.env", "compose/grafana.env")
        for vol in svc.get("volumes", []):
            src = str(vol).split(":")[0]
            if src.startswith("./"):
                rel = src[2:]
                if not (DEPLOY / rel).exists() and not rel.startswith(written_by_setup):
                    problem(f"compose.yaml: {name} mounts {src}, which does not exist")
        for env in [svc.get("env_file")] if isinstance(svc.get("env_file"), str) else svc.get("env_file", []) or []:
            if not env.startswith(written_by_setup):
                problem(f"compose.yaml: {name}: env_file {env} is not written by compose/setup.sh")


METRIC = re.compile(r"\b((?:sapha|gnatsd|jetstream|process)_[a-z0-9_]+|up)\b")


def used_metrics():
    names = set()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            names.update(METRIC.findall(rule["expr"]))
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "sapha.json").read_text())
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            names.update(METRIC.findall(t.get("expr", "")))
    # A histogram is used through its _bucket series.
    return sorted(names)


def check_grafana():
    for path in (DEPLOY / "grafana").rglob("*.yaml"):
        load_all(path)
    for path in (DEPLOY / "grafana").rglob("*.json"):
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            problem(f"{path.relative_to(ROOT)}: not JSON: {e}")
            continue
        ids = [p["id"] for p in dash.get("panels", [])]
        if len(ids) != len(set(ids)):
            problem(f"{path.relative_to(ROOT)}: duplicate panel ids")
        for p in dash.get("panels", []):
            if p.get("type") != "row" and not p.get("targets"):
                problem(f"{path.relative_to(ROOT)}: panel {p.get('title')!r} has no query")


def main():
    if "--list-metrics" in sys.argv:
        print("\n".join(used_metrics()))
        return 0
    for path in DEPLOY.rglob("*.yaml"):
        load_all(path)
    drain_ms = check_k8s()
    check_compose(drain_ms)
    check_grafana()
    for p in problems:
        print(f"deploy-check: {p}", file=sys.stderr)
    if not problems:
        print(f"deploy-check.py: ok (k8s, compose, grafana; the hub's drain is {drain_ms} ms)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
