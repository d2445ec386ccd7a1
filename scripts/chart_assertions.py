"""Assertions on a rendered watchkeeper chart, beyond what Kubernetes' schemas check.

    chart_assertions.py SCENARIO RENDERED.yaml RELEASE_NAMESPACE [WATCH_NAMESPACE]

SCENARIO is one of: cluster, namespace, minimal, full. kubernetes-validate proves every object is
well-formed; this proves the chart means what docs/install.md promises: the security settings of
the pod, the probes, the controller's arguments, and exactly the RBAC rules the controller needs in
each scope (a rule added or widened fails here until the table below is changed on purpose).
Exit status 1 with one line per failed assertion.
"""

import sys

import yaml

KINDS = ["healthmonitors", "cronjobspecs", "backuppolicies", "maintenancewindows", "failoverplans"]

# (apiGroup, resource) -> verbs: every permission the controller has on watched namespaces.
EXPECTED_WATCH_RULES = {
    **{("watchkeeper.dev", k): {"get", "list", "watch", "patch", "update"} for k in KINDS},
    **{("watchkeeper.dev", k + "/status"): {"get", "patch", "update"} for k in KINDS},
    **{("watchkeeper.dev", k + "/finalizers"): {"update"} for k in KINDS},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("batch", "cronjobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "secrets"): {"get"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "serviceaccounts"): {"get", "list", "watch", "create", "patch"},
    ("", "configmaps"): {"get", "list", "watch", "patch"},
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("apps", "statefulsets"): {"get", "list", "watch", "patch"},
    ("apps", "replicasets"): {"get", "list", "watch", "patch"},
    ("apps", "deployments/scale"): {"get", "patch", "update"},
    ("apps", "statefulsets/scale"): {"get", "patch", "update"},
}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def rule_table(rules, where):
    """Flattens RBAC rules into {(group, resource): verbs}; names nothing broader than listed."""
    table = {}
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            check("*" not in rule.get(field, []), f"{where}: wildcard in {field}: {rule}")
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                table.setdefault((group, resource), set()).update(rule.get("verbs", []))
    return table


def find(objects, kind, name=None):
    return [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_deployment(objects, scenario, release_ns, watch_ns):
    deployments = find(objects, "Deployment")
    if not check(len(deployments) == 1, f"expected one Deployment, found {len(deployments)}"):
        return None
    d = deployments[0]
    check(d["metadata"].get("namespace") == release_ns, "Deployment not in the release namespace")
    spec = d["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    check(labels_match(spec["selector"]["matchLabels"], pod_labels), "Deployment selector does not match its pods")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
    check(psc.get("runAsUser") == 65532, "pod does not run as UID 65532")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile is not RuntimeDefault")
    containers = pod["containers"]
    if not check(len(containers) == 1, "expected one container"):
        return d
    c = containers[0]
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, "container root filesystem is not read-only")
    check(sc.get("allowPrivilegeEscalation") is False, "container allows privilege escalation")
    check(sc.get("runAsNonRoot") is True, "container runAsNonRoot is not true")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "container does not drop ALL capabilities")
    check(not sc.get("capabilities", {}).get("add"), "container adds capabilities")
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            check(res in c.get("resources", {}).get(kind, {}), f"container has no {res} {kind[:-1]}")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("metrics") == 8080, f"metrics port is not 8080: {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") == "metrics", f"{probe} is not GET {path} on the metrics port")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/tmp" in mounts, "no writable /tmp beside the read-only root filesystem")
    env = {e["name"]: e for e in c.get("env", [])}
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        ref = env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        check(ref == field, f"env {name} is not the downward API's {field}")

    args = c.get("args", [])
    check(args[:1] == ["controller"], f"args do not start with the controller subcommand: {args}")

    def flag(name):
        if name not in args:
            return None
        i = args.index(name)
        return args[i + 1] if i + 1 < len(args) else ""

    check(flag("--metrics-addr") == "0.0.0.0:8080", "--metrics-addr is not 0.0.0.0:8080")
    check(flag("--log-format") == "json", "--log-format is not json")
    if scenario in ("namespace",):
        check(flag("--namespace") == watch_ns, f"--namespace is not {watch_ns}: {args}")
    else:
        check("--namespace" not in args, f"cluster scope but --namespace given: {args}")
    if scenario == "minimal":
        check("--leader-election=off" in args, f"leader election disabled but not --leader-election=off: {args}")
        check(spec["replicas"] == 1, "minimal scenario expects one replica")
    else:
        check("--leader-election=on" in args, f"no --leader-election=on: {args}")
        check(flag("--lease-name"), "no --lease-name")
        check(flag("--lease-namespace") == release_ns, "--lease-namespace is not the release namespace")
        check(spec["replicas"] == 2, f"default replica count is not 2: {spec['replicas']}")
    return d


def check_rbac(objects, scenario, release_ns, watch_ns, deployment):
    sa_name = deployment["spec"]["template"]["spec"]["serviceAccountName"] if deployment else None
    if scenario == "minimal":
        check(not find(objects, "ServiceAccount"), "serviceAccount.create=false still renders a ServiceAccount")
        for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
            check(not find(objects, kind), f"rbac.create=false still renders a {kind}")
        return
    sas = find(objects, "ServiceAccount")
    check(len(sas) == 1 and sas[0]["metadata"]["name"] == sa_name, "the pod's ServiceAccount is not rendered")

    def bound_roles(binding_kind):
        out = []
        for b in find(objects, binding_kind):
            subjects = b.get("subjects", [])
            if any(s["kind"] == "ServiceAccount" and s["name"] == sa_name and s["namespace"] == release_ns for s in subjects):
                out.append(b)
        return out

    role_bindings = bound_roles("RoleBinding")
    cluster_bindings = bound_roles("ClusterRoleBinding")
    if scenario == "namespace":
        check(not find(objects, "ClusterRoleBinding"), "namespace scope renders a ClusterRoleBinding")
        for cr in find(objects, "ClusterRole"):
            aggregate = any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in cr["metadata"].get("labels", {}))
            check(aggregate, f"namespace scope renders a non-aggregated ClusterRole {cr['metadata']['name']}")
        watch_bindings = [b for b in role_bindings if b["metadata"].get("namespace") == watch_ns and b["roleRef"]["kind"] == "Role" and not b["roleRef"]["name"].endswith("-leader-election")]
        check(len(watch_bindings) == 1, f"expected one RoleBinding in {watch_ns} for the watched objects")
        roles = [r for b in watch_bindings for r in find(objects, "Role", b["roleRef"]["name"]) if r["metadata"].get("namespace") == watch_ns]
    else:
        check(len(cluster_bindings) == 1, "cluster scope: expected one ClusterRoleBinding for the controller")
        roles = [r for b in cluster_bindings for r in find(objects, "ClusterRole", b["roleRef"]["name"])]
    if check(len(roles) == 1, "the watch role is missing"):
        table = rule_table(roles[0]["rules"], roles[0]["metadata"]["name"])
        check(table == EXPECTED_WATCH_RULES, "watch rules differ from the expected least-privilege set:\n"
              f"  extra: { {k: sorted(v) for k, v in table.items() if EXPECTED_WATCH_RULES.get(k) != v} }\n"
              f"  missing: { {k: sorted(v) for k, v in EXPECTED_WATCH_RULES.items() if table.get(k) != v} }")
        check(("coordination.k8s.io", "leases") not in table, "lease rights leak into the watch role")

    # Leader election: leases only in the release namespace, get/update only on the one Lease.
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    lease_name = args[args.index("--lease-name") + 1] if "--lease-name" in args else None
    lease_bindings = [b for b in role_bindings if b["metadata"].get("namespace") == release_ns and b["roleRef"]["name"].endswith("-leader-election")]
    if check(len(lease_bindings) == 1, "no leader-election RoleBinding in the release namespace"):
        (lease_role,) = find(objects, "Role", lease_bindings[0]["roleRef"]["name"])
        check(lease_role["metadata"]["namespace"] == release_ns, "leader-election Role not in the release namespace")
        for rule in lease_role["rules"]:
            check(rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"], f"leader-election Role grants more than leases: {rule}")
            if set(rule["verbs"]) - {"create"}:
                check(rule.get("resourceNames") == [lease_name], f"lease get/update not limited to {lease_name}: {rule}")
        verbs = set().union(*(r["verbs"] for r in lease_role["rules"]))
        check(verbs == {"get", "create", "update"}, f"lease verbs are {sorted(verbs)}")
    # Nothing may grant the controller leases anywhere else.
    for b in role_bindings + cluster_bindings:
        role = find(objects, b["roleRef"]["kind"], b["roleRef"]["name"])
        for r in role:
            if r["metadata"]["name"].endswith("-leader-election"):
                continue
            check(("coordination.k8s.io", "leases") not in rule_table(r["rules"], r["metadata"]["name"]), f"{r['metadata']['name']} grants leases")


def check_services(objects, scenario, deployment):
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = find(objects, "Service")
    if check(len(services) == 1, "expected one metrics Service"):
        svc = services[0]
        check(labels_match(svc["spec"]["selector"], pod_labels), "metrics Service does not select the controller pods")
        check([p["targetPort"] for p in svc["spec"]["ports"]] == ["metrics"], "metrics Service does not target the metrics port")
    pdbs = find(objects, "PodDisruptionBudget")
    if check(len(pdbs) == 1, "expected one PodDisruptionBudget"):
        check(labels_match(pdbs[0]["spec"]["selector"]["matchLabels"], pod_labels), "PDB does not select the controller pods")
        check(pdbs[0]["spec"].get("maxUnavailable", 0) != 0, "PDB would block node drains")
    monitors = find(objects, "ServiceMonitor")
    if scenario == "full":
        if check(len(monitors) == 1, "serviceMonitor.enabled=true renders no ServiceMonitor"):
            sm = monitors[0]
            check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
            check(services and labels_match(sm["spec"]["selector"]["matchLabels"], services[0]["metadata"]["labels"]), "ServiceMonitor does not select the metrics Service")
            check([e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"], "ServiceMonitor does not scrape the metrics port")
    else:
        check(not monitors, "a ServiceMonitor is rendered although it is off by default")


def main():
    scenario, path, release_ns = sys.argv[1:4]
    watch_ns = sys.argv[4] if len(sys.argv) > 4 else release_ns
    with open(path) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    crds = find(objects, "CustomResourceDefinition")
    check(sorted(c["spec"]["names"]["plural"] for c in crds) == sorted(KINDS), "the five CRDs are not all rendered")
    check(all(c["spec"]["group"] == "watchkeeper.dev" for c in crds), "a CRD outside watchkeeper.dev")
    deployment = check_deployment(objects, scenario, release_ns, watch_ns)
    if deployment:
        check_rbac(objects, scenario, release_ns, watch_ns, deployment)
        check_services(objects, scenario, deployment)
    for o in objects:
        if o["kind"] not in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"):
            ns = o["metadata"].get("namespace")
            check(ns in (release_ns, watch_ns), f"{o['kind']}/{o['metadata']['name']} has namespace {ns!r}")
    if failures:
        for failure in failures:
            print(f"chart [{scenario}]: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"chart [{scenario}]: {len(objects)} objects, all assertions hold")


if __name__ == "__main__":
    main()
