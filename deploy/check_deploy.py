#!/usr/bin/env python3
"""Static checks of the deployment files, run by scripts/check-deploy.sh.

    python3 deploy/check_deploy.py --compose-config RESOLVED.yml --promtool PATH

RESOLVED.yml is `docker-compose -f docker-compose.yml config` (anchors merged,
variables substituted). Needs PyYAML (Debian: python3-yaml) and, for the
PromQL syntax check of the dashboard, promtool. Prints one line per check and
exits 1 when any failed.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAILURES = []


def ok(msg):
    print(f"  ok    {msg}")


def fail(msg):
    print(f"  FAIL  {msg}")
    FAILURES.append(msg)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


def path(*p):
    return os.path.join(ROOT, *p)


def load_yaml_all(p):
    with open(p) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# --------------------------------------------------------------------------
# Metric names in PromQL

TARGET_LABELS = {"job", "instance"}
SYNTHETIC = {"up": set()}  # made by Prometheus per target
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on",
            "ignoring", "group_left", "group_right", "inf", "nan", "atan2"}


def load_metrics():
    known = {}
    with open(path("deploy", "metrics.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, typ, labels = line.split()
            known[name] = (typ, set() if labels == "-" else set(labels.split(",")))
    return known


def resolve(name, known):
    """The family and allowed labels of a series name, or None."""
    if name in known:
        typ, labels = known[name]
        return name, (labels if typ != "histogram" else None)
    for suffix, extra in (("_bucket", {"le"}), ("_count", set()), ("_sum", set())):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in known and known[base][0] == "histogram":
                return base, known[base][1] | extra
    if name in SYNTHETIC:
        return name, SYNTHETIC[name]
    return None


STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_series(expr):
    """(metric name, [matcher label names]) for every series the expression reads."""
    out = []
    # label names of selectors, before the strings are blanked
    blanked = STRING.sub('""', expr)
    for m in SELECTOR.finditer(blanked):
        name = m.group(1)
        labels = [l.strip().split("=")[0].split("!")[0].rstrip("~").strip()
                  for l in m.group(2).split(",") if l.strip()]
        if name and name not in KEYWORDS:
            out.append((name, labels))
    rest = SELECTOR.sub(lambda m: " " + (m.group(1) or "") + " ", blanked)
    rest = GROUPING.sub(" ", rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    seen = {n for n, _ in out}
    for m in IDENT.finditer(rest):
        word = m.group(0)
        after = rest[m.end():].lstrip()
        if after.startswith("("):  # a function or an aggregation
            continue
        if word.lower() in KEYWORDS or word in seen:
            continue
        # durations and numbers (5m, 1e3) start with a digit and never match IDENT
        out.append((word, []))
        seen.add(word)
    return out


def check_metric_use(where, expr, known, unknown):
    for name, labels in promql_series(expr):
        r = resolve(name, known)
        if r is None:
            unknown.setdefault(name, set()).add(where)
            continue
        family, allowed = r
        if allowed is None:  # a histogram family used bare
            unknown.setdefault(name + " (a histogram: use _bucket, _count or _sum)", set()).add(where)
            continue
        bad = [l for l in labels if l not in allowed | TARGET_LABELS]
        if bad:
            unknown.setdefault(f"{name}{{{','.join(bad)}}} (label not exported)", set()).add(where)


def report_unknown(what, unknown):
    if unknown:
        for name, wheres in sorted(unknown.items()):
            fail(f"{what}: unknown metric or label {name} in {', '.join(sorted(wheres))}")
    else:
        ok(f"{what}: every metric and selector label is in deploy/metrics.txt")


# --------------------------------------------------------------------------
def check_alerts(known):
    print("alert rules (deploy/prometheus/alerts.yml, alerts_test.yml)")
    rules = yaml.safe_load(open(path("deploy", "prometheus", "alerts.yml")))
    tests = yaml.safe_load(open(path("deploy", "prometheus", "alerts_test.yml")))
    alerts = {}
    unknown = {}
    bad = 0
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            name = r["alert"]
            alerts[name] = r
            problems = []
            if not r.get("for"):
                problems.append("no for:")
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                problems.append("severity not critical|warning|info")
            ann = r.get("annotations", {})
            for a in ("summary", "description"):
                if not ann.get(a):
                    problems.append(f"no {a} annotation")
            if problems:
                bad += 1
                fail(f"{name}: {', '.join(problems)}")
            check_metric_use(name, r["expr"], known, unknown)
    check(alerts and not bad, f"{len(alerts)} alerts, each with for:, severity, summary and description")
    report_unknown("alerts.yml", unknown)

    fires, silent = set(), set()
    unknown = {}
    for t in tests["tests"]:
        for s in t.get("input_series", []):
            check_metric_use(f"test '{t.get('name', '?')}'", s["series"], known, unknown)
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else silent).add(a["alertname"])
    report_unknown("alerts_test.yml input series", unknown)
    for name in sorted(alerts):
        check(name in fires and name in silent,
              f"{name}: tested firing{'' if name in fires else ' (MISSING)'} and silent{'' if name in silent else ' (MISSING)'}")
    stray = (fires | silent) - set(alerts)
    check(not stray, "tests name no alert that does not exist" + (f": {sorted(stray)}" if stray else ""))


# --------------------------------------------------------------------------
def dashboard_exprs(d):
    for p in d.get("panels", []):
        for sub in [p] + p.get("panels", []):
            for t in sub.get("targets", []):
                if t.get("expr"):
                    yield sub.get("title", "?"), t.get("refId", "?"), t["expr"]


def grafana_to_promql(expr):
    e = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    e = re.sub(r"\$\{?(\w+)\}?", ".*", e)  # $job, ${instance}: inside regex matchers
    return e


def check_dashboard(known, promtool):
    print("Grafana dashboard (deploy/grafana/saga-account.json)")
    p = path("deploy", "grafana", "saga-account.json")
    try:
        d = json.load(open(p))
    except ValueError as e:
        fail(f"not JSON: {e}")
        return
    ok("parses as JSON")
    var = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    check(var.get("datasource", {}).get("type") == "datasource"
          and var["datasource"].get("query") == "prometheus", "a ${datasource} variable of Prometheus datasources")
    check("job" in var and "instance" in var, "job and instance variables")
    check(bool(d.get("uid")) and bool(d.get("title")), f"uid {d.get('uid')!r}, title {d.get('title')!r}")
    ids, bad_ds, no_grid = [], [], []
    for panel in d.get("panels", []):
        for sub in [panel] + panel.get("panels", []):
            ids.append(sub.get("id"))
            if "gridPos" not in sub:
                no_grid.append(sub.get("title"))
            if sub.get("type") != "row":
                dss = [sub.get("datasource")] + [t.get("datasource") for t in sub.get("targets", [])]
                if any((ds or {}).get("uid") != "${datasource}" for ds in dss):
                    bad_ds.append(sub.get("title"))
    check(len(ids) == len(set(ids)), f"{len(ids)} panels with unique ids")
    check(not no_grid, "every panel has a gridPos" + (f" (not: {no_grid})" if no_grid else ""))
    check(not bad_ds, "every panel and query uses the ${datasource} variable" + (f" (not: {bad_ds})" if bad_ds else ""))
    for v in ("job", "instance"):
        q = var.get(v, {}).get("definition", "")
        for name, _ in promql_series(grafana_to_promql(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", q))):
            check(resolve(name, known) is not None, f"variable ${v} reads a known metric ({name})")

    unknown = {}
    exprs = list(dashboard_exprs(d))
    for title, ref, expr in exprs:
        check_metric_use(f"'{title}'/{ref}", grafana_to_promql(expr), known, unknown)
    report_unknown("dashboard", unknown)

    # PromQL syntax of every query, by promtool as recording rules.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard_check:panel_{i}", "expr": grafana_to_promql(e)}
        for i, (_, _, e) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f)
        tmp = f.name
    try:
        r = subprocess.run([promtool, "check", "rules", tmp], capture_output=True, text=True)
    finally:
        os.unlink(tmp)
    if r.returncode == 0:
        ok(f"promtool parses all {len(exprs)} PromQL queries")
    else:
        fail(f"promtool rejects a dashboard query:\n{r.stdout}{r.stderr}")


# --------------------------------------------------------------------------
def env_list(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_k8s():
    print("Kubernetes manifests (deploy/k8s)")
    docs = {}
    kdir = path("deploy", "k8s")
    for fn in sorted(os.listdir(kdir)):
        if not fn.endswith((".yaml", ".yml")):
            continue
        try:
            ds = load_yaml_all(os.path.join(kdir, fn))
        except yaml.YAMLError as e:
            fail(f"{fn}: not YAML: {e}")
            continue
        for doc in ds:
            if not (isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind")):
                fail(f"{fn}: a document without apiVersion/kind")
                continue
            docs.setdefault(doc["kind"], []).append((fn, doc))
        ok(f"{fn}: {', '.join(d.get('kind') for d in ds)}")

    dep = docs.get("Deployment", [(None, None)])[0][1]
    if not check(dep is not None, "a Deployment"):
        return
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = env_list(c)
    check(spec["securityContext"].get("runAsNonRoot") is True, "pod runs as non-root")
    check(c.get("securityContext", {}).get("readOnlyRootFilesystem") is True, "read-only root filesystem")
    check(dep["spec"].get("replicas", 1) >= 2, f"{dep['spec'].get('replicas')} replicas")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readinessProbe GET /readyz")
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "livenessProbe GET /healthz")
    check("startupProbe" in c, "startupProbe")
    names = [e["name"] for e in c.get("env", [])]
    check("POD_IP" in env and env["POD_IP"].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
          "POD_IP from the downward API")
    check(env.get("MACHINE_ID", {}).get("value") == "$(POD_IP)" and "POD_IP" in names
          and names.index("POD_IP") < names.index("MACHINE_ID"), "MACHINE_ID: $(POD_IP), after POD_IP")
    delay = int(env.get("SHUTDOWN_DELAY_SECONDS", {}).get("value", 0))
    timeout = int(env.get("SHUTDOWN_TIMEOUT_SECONDS", {}).get("value", 10))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check(grace > delay + timeout and delay > 0,
          f"terminationGracePeriodSeconds {grace} > SHUTDOWN_DELAY_SECONDS {delay} + SHUTDOWN_TIMEOUT_SECONDS {timeout}")
    secret_refs = {e["valueFrom"]["secretKeyRef"]["key"] for e in c.get("env", [])
                   if "secretKeyRef" in e.get("valueFrom", {})}
    check({"JWT_SECRET", "DB_DSN", "REDIS_PASSWORD"} <= secret_refs, "JWT_SECRET, DB_DSN, REDIS_PASSWORD from a Secret")
    secrets = {d["metadata"]["name"]: d for _, d in docs.get("Secret", [])}
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            s = secrets.get(ref["name"])
            check(s is not None and ref["key"] in {**s.get("stringData", {}), **s.get("data", {})},
                  f"secret key {ref['name']}/{ref['key']} is in the example Secret")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"http": 8080, "grpc": 8000, "metrics": 8081}, f"container ports {ports}")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "8081",
          "prometheus.io scrape annotations on port 8081")
    check("limits" in c.get("resources", {}) and "requests" in c.get("resources", {}), "resources requests and limits")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check(env.get("DATA_DIR", {}).get("value", "/data") in mounts, "DATA_DIR is a mounted volume")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    for fn, svc in docs.get("Service", []):
        sel = svc["spec"].get("selector", {})
        check(sel and all(labels.get(k) == v for k, v in sel.items()),
              f"Service {svc['metadata']['name']} selects the Deployment's pods")
        for p in svc["spec"]["ports"]:
            check(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
                  f"Service {svc['metadata']['name']} port {p['name']} targets a container port")
    svc_ports = {p["port"] for _, s in docs.get("Service", []) for p in s["spec"]["ports"]}
    check({8080, 8000, 8081} <= svc_ports, "Services expose 8080, 8000 and 8081")
    for fn, pdb in docs.get("PodDisruptionBudget", []):
        sel = pdb["spec"]["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()), "PodDisruptionBudget selects the pods")
    kust = os.path.join(kdir, "kustomization.yaml")
    if os.path.exists(kust):
        res = yaml.safe_load(open(kust)).get("resources", [])
        check(all(os.path.exists(os.path.join(kdir, r)) for r in res) and "secret.example.yaml" not in res,
              f"kustomization lists existing files, not the example Secret: {res}")


# --------------------------------------------------------------------------
def check_compose(resolved):
    print("docker-compose.yml (resolved by docker-compose config)")
    c = yaml.safe_load(open(resolved))
    svcs = c.get("services", {})
    want = ["account-1", "account-2", "mariadb", "redis-cluster-init", "jaeger", "prometheus", "grafana"] + \
           [f"redis-node-{i}" for i in range(1, 7)]
    missing = [s for s in want if s not in svcs]
    check(not missing, "services: " + ", ".join(want) + (f" (MISSING {missing})" if missing else ""))
    if missing:
        return
    envs = {n: svcs[n].get("environment", {}) for n in ("account-1", "account-2")}
    check(envs["account-1"].get("MACHINE_ID") != envs["account-2"].get("MACHINE_ID"), "distinct MACHINE_ID")
    for k in ("JWT_SECRET", "DB_DSN", "REDIS_ADDRS", "REDIS_PASSWORD"):
        check(envs["account-1"].get(k) and envs["account-1"].get(k) == envs["account-2"].get(k), f"same {k} on both replicas")
    addrs = envs["account-1"].get("REDIS_ADDRS", "").split(",")
    check(sorted(a.split(":")[0] for a in addrs) == [f"redis-node-{i}" for i in range(1, 7)], "REDIS_ADDRS names the six nodes")
    check("@tcp(mariadb:3306)/account" in envs["account-1"].get("DB_DSN", ""), "DB_DSN points at mariadb, database account")
    for n in ("account-1", "account-2"):
        e = envs[n]
        check(e.get("LOG_FORMAT") == "json", f"{n}: LOG_FORMAT json")
        check(":4317" in (e.get("JAEGER_URL") or e.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ""), f"{n}: traces to OTLP :4317")
        grace = svcs[n].get("stop_grace_period", "10s")
        grace_s = int(re.fullmatch(r"(\d+)s", grace).group(1)) if re.fullmatch(r"(\d+)s", grace) else 0
        total = int(e.get("SHUTDOWN_DELAY_SECONDS", 0)) + int(e.get("SHUTDOWN_TIMEOUT_SECONDS", 10))
        check(int(e.get("SHUTDOWN_DELAY_SECONDS", 0)) > 0 and grace_s > total,
              f"{n}: stop_grace_period {grace} > shutdown delay + timeout ({total}s)")
        deps = svcs[n].get("depends_on", {})
        check(deps.get("mariadb", {}).get("condition") == "service_healthy"
              and deps.get("redis-cluster-init", {}).get("condition") == "service_completed_successfully",
              f"{n}: waits for mariadb healthy and the cluster job completed")
    p1 = [str(p) for p in svcs["account-1"].get("ports", [])]
    check(any(re.search(r"(^|:)8080:8080(/tcp)?$", p) for p in p1), "account-1 publishes 8080:8080")
    published = []
    for n, s in svcs.items():
        for p in s.get("ports", []):
            m = re.match(r"^(?:([\d.]+):)?(\d+):\d+", str(p))
            if m:
                published.append(((m.group(1) or "0.0.0.0"), m.group(2), n))
    hp = [(ip, port) for ip, port, _ in published]
    check(len(hp) == len(set(hp)), f"{len(hp)} published ports, no clash")
    check(all(ip == "127.0.0.1" for ip, _ in hp), "published on 127.0.0.1 only")
    for i in range(1, 7):
        cmd = " ".join(map(str, svcs[f"redis-node-{i}"].get("command", [])))
        check("--cluster-enabled yes" in cmd and "--requirepass" in cmd and "--masterauth" in cmd,
              f"redis-node-{i}: cluster-enabled, requirepass, masterauth")
    deps = svcs["redis-cluster-init"].get("depends_on", {})
    check(all(deps.get(f"redis-node-{i}", {}).get("condition") == "service_healthy" for i in range(1, 7)),
          "redis-cluster-init waits for all six nodes healthy")
    check("healthcheck" in svcs["mariadb"], "mariadb has a healthcheck")
    check(svcs["mariadb"].get("environment", {}).get("MARIADB_DATABASE") == "account", "mariadb creates database account")
    check(svcs["jaeger"].get("environment", {}).get("COLLECTOR_OTLP_ENABLED") == "true", "jaeger takes OTLP")
    # bind-mounted files exist in the repository
    for n, s in svcs.items():
        for v in s.get("volumes", []):
            src = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
            typ = v.get("type") if isinstance(v, dict) else ("bind" if src.startswith(("/", ".")) else "volume")
            if typ == "bind":
                check(os.path.exists(src if os.path.isabs(src) else path(src)), f"{n}: bind mount {src} exists")


# --------------------------------------------------------------------------
def check_dockerfile():
    print("Dockerfile and .dockerignore")
    df = open(path("Dockerfile")).read()
    check(re.search(r"^FROM rust:\$\{RUST_VERSION\}-\$\{DEBIAN_RELEASE\} AS builder|^FROM rust:[\d.]+-bookworm", df, re.M) is not None,
          "builder stage FROM rust:*-bookworm")
    check("cargo build --release --locked --bin saga-account" in df, "cargo build --release --locked --bin saga-account")
    check(re.search(r'^HEALTHCHECK .*CMD \["saga-account", "healthcheck"\]', df, re.M | re.S) is not None,
          "HEALTHCHECK saga-account healthcheck")
    exposed = set(re.findall(r"^EXPOSE\s+(.+)$", df, re.M))
    ports = {p for e in exposed for p in e.split()}
    check({"8080", "8000", "8081"} <= ports and not ports - {"8080", "8000", "8081"}, f"EXPOSE {sorted(ports)}")
    user = re.findall(r"^USER\s+(\S+)", df, re.M)
    check(user and not user[-1].startswith(("0", "root")), f"runs as USER {user[-1] if user else None}")
    check(re.search(r'^VOLUME \["/data"\]', df, re.M) is not None and "DATA_DIR=/data" in df, "VOLUME /data, DATA_DIR=/data")
    check(re.search(r'^ENTRYPOINT \["saga-account"\]', df, re.M) is not None, "ENTRYPOINT the binary")

    # Every path the Cargo manifests need must be let in by the allowlist.
    allowed = set()
    for line in open(path(".dockerignore")):
        line = line.strip()
        if line.startswith("!"):
            allowed.add(line[1:].split("/")[0])
    if tomllib is None:
        ok("(Python without tomllib: manifest paths not checked)")
        return
    needed = set()

    def manifest(rel_dir):
        p = path(rel_dir, "Cargo.toml")
        if not os.path.exists(p):
            fail(f"{os.path.join(rel_dir, 'Cargo.toml')} missing")
            return
        m = tomllib.load(open(p, "rb"))
        pre = (rel_dir + "/") if rel_dir else ""
        needed.add(pre + "Cargo.toml")
        pkg = m.get("package", {})
        if pkg:
            b = pkg.get("build")
            if b is None and os.path.exists(path(rel_dir, "build.rs")):
                b = "build.rs"
            if isinstance(b, str):
                needed.add(pre + b)
            if os.path.exists(path(rel_dir, "src")):
                needed.add(pre + "src")
        for kind in ("bin", "bench", "test", "example", "lib"):
            ts = m.get(kind, [])
            for t in ([ts] if isinstance(ts, dict) else ts):
                if "path" in t:
                    needed.add(pre + t["path"])
                elif kind == "bench":
                    needed.add(pre + "benches")
                elif kind == "test":
                    needed.add(pre + "tests")
        for mem in m.get("workspace", {}).get("members", []):
            if "*" in mem:
                base = mem.split("*")[0].rstrip("/")
                for d in sorted(os.listdir(path(base))) if os.path.isdir(path(base)) else []:
                    if os.path.exists(path(base, d, "Cargo.toml")):
                        manifest(os.path.join(base, d))
            elif mem not in ("", "."):
                manifest(mem)
        for dep in list(m.get("dependencies", {}).values()) + list(m.get("build-dependencies", {}).values()):
            if isinstance(dep, dict) and "path" in dep:
                needed.add(os.path.normpath(os.path.join(rel_dir, dep["path"])))

    manifest("")
    # Files the sources read at compile time: include_str!/include_bytes!
    # (relative to the file), sqlx::migrate! (relative to the crate), and the
    # top-level directories the build scripts name (proto).
    top_dirs = {d for d in os.listdir(ROOT) if os.path.isdir(path(d)) and not d.startswith(".")}
    for n in sorted(needed):
        p = path(n)
        files = [p] if p.endswith(".rs") and os.path.isfile(p) else [
            os.path.join(dp, f) for dp, _, fs in os.walk(p) for f in fs if f.endswith(".rs")] if os.path.isdir(p) else []
        for fp in files:
            src = open(fp, encoding="utf-8", errors="replace").read()
            crate = os.path.dirname(fp)  # the nearest directory with a Cargo.toml
            while crate != ROOT and not os.path.exists(os.path.join(crate, "Cargo.toml")):
                crate = os.path.dirname(crate)
            for mac, arg in re.findall(r'\b(include_str|include_bytes|migrate)!\(\s*"([^"]+)"', src):
                base = os.path.dirname(fp) if mac != "migrate" else crate
                needed.add(os.path.relpath(os.path.normpath(os.path.join(base, arg)), ROOT))
            if os.path.basename(fp) == "build.rs":
                for lit in re.findall(r'"([^"]+)"', src):
                    first = lit.split("/")[0]
                    if first in top_dirs:
                        needed.add(first)
    top = {n.split("/")[0] for n in needed if n != "." and not n.startswith("..")}
    missing = sorted(t for t in top if t not in allowed and not any(
        re.fullmatch(a.replace(".", r"\.").replace("*", ".*"), t) for a in allowed))
    check(not missing, f".dockerignore lets in what the manifests need ({', '.join(sorted(top))})"
          + (f"; MISSING: {missing}" if missing else ""))


# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compose-config", required=True)
    ap.add_argument("--promtool", default="promtool")
    a = ap.parse_args()
    known = load_metrics()
    check_alerts(known)
    check_dashboard(known, a.promtool)
    check_k8s()
    check_compose(a.compose_config)
    check_dockerfile()
    if FAILURES:
        print(f"\n{len(FAILURES)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
