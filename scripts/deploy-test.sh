#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make deploy-test` (part of `make test`; no root, no cluster): renders
# deploy/ (the base), deploy/base and deploy/overlays/lattice with
# `kubectl kustomize` (offline)
# and checks that the rendered objects hold what the agent needs, read from
# the sources the agent and its tests are built from, so that a change on
# one side fails here until the other follows:
#   - the ClusterRole grants exactly list and watch on exactly the resources
#     of user/kube/kube.c's resources[] table (a resource added there without
#     a rule, or a rule left for a removed one, fails), and for status
#     writing get on the GatewayClass, Gateway and route resources of that
#     table and update on their /status, nothing else;
#   - a Role grants exactly get, create and update on leases (the status
#     Lease, in the agent's namespace);
#   - the bindings give both to the DaemonSet's service account;
#   - the GatewayClass ksplit names the controller of user/kube/source.h;
#   - the DaemonSet: hostNetwork, hostPID (drain reads /proc/<pid>/ns),
#     every argument a `ksplit run` option of user/cli/run.c, no --config nor
#     --kubeconfig (in-cluster), --cgroup on the cgroup mount, the
#     --metrics-addr port is the probes' port, env the args use is defined,
#     /healthz and /readyz probes, the host's /sys/fs/bpf and /sys/fs/cgroup
#     mounted (bpffs HostToContainer, or Bidirectional only if privileged),
#     not privileged, capabilities exactly scripts/image-test.sh's CAPS,
#     the image tag the version of user/common/version.h;
#   - the lattice overlay adds --gateway-class amazon-vpc-lattice, the base
#     has none.
# Environment: KUBECTL (default kubectl).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBECTL=${KUBECTL:-kubectl}
cd "$ROOT"

command -v "$KUBECTL" >/dev/null || { echo "[deploy-test] FAIL: $KUBECTL missing (run: scripts/deps.sh --deploy)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/ksplit-deploy-test.XXXX)
trap 'rm -rf "$TMP"' EXIT

for k in . base overlays/lattice; do
	out=$TMP/${k//\//-}.yaml
	# kustomize v5 warns on stderr about fields v2.0 needs (bases,
	# patchesJson6902, commonLabels): show it only when the render fails.
	if ! "$KUBECTL" kustomize "deploy/$k" >"$out" 2>"$TMP/err"; then
		cat "$TMP/err" >&2
		echo "[deploy-test] FAIL: kubectl kustomize deploy/$k" >&2
		exit 1
	fi
done

# deploy/ itself is the base.
cmp -s "$TMP/..yaml" "$TMP/base.yaml" || { echo "[deploy-test] FAIL: kubectl kustomize deploy/ differs from deploy/base" >&2; exit 1; }

python3 - "$TMP/base.yaml" "$TMP/overlays-lattice.yaml" <<'EOF'
import re
import sys

import yaml

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)
    return cond


def src(path):
    with open(path) as f:
        return f.read()


# --- what the agent's sources say ---------------------------------------------
kube_c = src("user/kube/kube.c")
macros = dict(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', kube_c))
table = re.search(r"resources\[\]\s*=\s*\{(.*?)\n\};", kube_c, re.S)
if not table:
    sys.exit("[deploy-test] FAIL: no resources[] table in user/kube/kube.c")
want_res, status_res = set(), set()
for grp, plural, kind in re.findall(r'\{\s*("[^"]*"|\w+)\s*,\s*\{[^}]*\}\s*,\s*"([^"]+)"\s*,\s*"([^"]+)"',
                                    table.group(1)):
    g = grp.strip('"') if grp.startswith('"') else macros[grp]
    want_res.add((g, plural))
    # What user/kube/status.c writes: GatewayClasses, Gateways, routes.
    if kind in ("GatewayClass", "Gateway") or kind.endswith("Route"):
        status_res.add((g, plural))
if not want_res:
    sys.exit("[deploy-test] FAIL: no entries read from user/kube/kube.c resources[]")
controller = re.search(r'#define\s+KS_GATEWAY_CONTROLLER\s+"([^"]+)"', src("user/kube/source.h")).group(1)
run_c = src("user/cli/run.c")
run_opts = dict(re.findall(r'\{\s*"([a-z-]+)",\s*(no_argument|required_argument)', run_c))
version = re.search(r'#define\s+KSPLIT_VERSION\s+"([^"]+)"', src("user/common/version.h")).group(1)
caps = set(re.search(r"CAPS=\$\{CAPS:-([A-Z_,]+)\}", src("scripts/image-test.sh")).group(1).split(","))


def objects(path):
    with open(path) as f:
        return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(f) if o}


def one(objs, kind, name):
    o = objs.get((kind, name))
    check(o is not None, f"no {kind} {name}")
    return o or {}


def check_render(name, objs, classes):
    global fails
    before = len(fails)
    fails_here = lambda: fails[before:]

    # RBAC: list + watch on the table's resources; get and update /status on what status.c writes.
    role = one(objs, "ClusterRole", "ksplit")
    by_verbs = {}
    for r in role.get("rules", []):
        verbs = tuple(sorted(r.get("verbs", [])))
        check(verbs in (("list", "watch"), ("get",), ("update",)),
              f"{name}: ClusterRole rule {r.get('apiGroups')} {r.get('resources')}: verbs "
              f"{r.get('verbs')}, want [list, watch], [get] or [update] (what user/kube/ does)")
        check(not r.get("resourceNames") and not r.get("nonResourceURLs"),
              f"{name}: ClusterRole rule {r}: resourceNames/nonResourceURLs are not used by the agent")
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                by_verbs.setdefault(verbs, set()).add((g, res))
    got = by_verbs.get(("list", "watch"), set())
    check(by_verbs.get(("get",), set()) == status_res,
          f"{name}: ClusterRole get on {sorted(by_verbs.get(('get',), set()))}, want {sorted(status_res)} "
          f"(the objects user/kube/status.c reads before it writes their status)")
    want_upd = {(g, res + "/status") for g, res in status_res}
    check(by_verbs.get(("update",), set()) == want_upd,
          f"{name}: ClusterRole update on {sorted(by_verbs.get(('update',), set()))}, want {sorted(want_upd)}")
    lrole = one(objs, "Role", "ksplit")
    check([(r.get("apiGroups"), r.get("resources"), sorted(r.get("verbs", []))) for r in lrole.get("rules", [])]
          == [(["coordination.k8s.io"], ["leases"], ["create", "get", "update"])],
          f"{name}: Role ksplit rules {lrole.get('rules')}, want exactly leases (coordination.k8s.io) "
          f"[get, create, update] (user/kube/lease.c)")
    for g, res in sorted(want_res - got):
        fails.append(f"{name}: ClusterRole grants nothing on {res} ({g or 'core'}), which user/kube/kube.c "
                     f"resources[] lists and watches: add it with verbs [list, watch]")
    for g, res in sorted(got - want_res):
        fails.append(f"{name}: ClusterRole grants {res} ({g or 'core'}), which user/kube/kube.c does not read")

    ds = one(objs, "DaemonSet", "ksplit")
    ns = ds.get("metadata", {}).get("namespace")
    check(ns, f"{name}: DaemonSet has no namespace")
    pod = ds.get("spec", {}).get("template", {}).get("spec", {})
    sa = pod.get("serviceAccountName")
    one(objs, "ServiceAccount", sa or "?")
    crb = one(objs, "ClusterRoleBinding", "ksplit")
    check(crb.get("roleRef", {}).get("name") == "ksplit" and crb.get("roleRef", {}).get("kind") == "ClusterRole",
          f"{name}: ClusterRoleBinding does not bind ClusterRole ksplit")
    check({"kind": "ServiceAccount", "name": sa, "namespace": ns} in crb.get("subjects", []),
          f"{name}: ClusterRoleBinding has no subject ServiceAccount {ns}/{sa}")
    rb = one(objs, "RoleBinding", "ksplit")
    check(rb.get("roleRef", {}).get("name") == "ksplit" and rb.get("roleRef", {}).get("kind") == "Role",
          f"{name}: RoleBinding does not bind Role ksplit")
    check(rb.get("metadata", {}).get("namespace") == ns and lrole.get("metadata", {}).get("namespace") == ns,
          f"{name}: Role and RoleBinding must be in the DaemonSet's namespace {ns} (the Lease's)")
    check({"kind": "ServiceAccount", "name": sa, "namespace": ns} in rb.get("subjects", []),
          f"{name}: RoleBinding has no subject ServiceAccount {ns}/{sa}")
    gc = one(objs, "GatewayClass", "ksplit")
    check(gc.get("spec", {}).get("controllerName") == controller,
          f"{name}: GatewayClass ksplit controllerName {gc.get('spec', {}).get('controllerName')}, want {controller}")

    check(pod.get("hostNetwork") is True, f"{name}: hostNetwork must be true (health checks, pin-dir lock)")
    check(pod.get("hostPID") is True, f"{name}: hostPID must be true (drain reads /proc/<pid>/ns/net)")
    ctrs = pod.get("containers", [])
    if not check(len(ctrs) == 1, f"{name}: want one container, got {len(ctrs)}"):
        return
    c = ctrs[0]
    check(c.get("image") == f"ksplit:{version}",
          f"{name}: image {c.get('image')}, want ksplit:{version} (make image's tag)")
    check(not c.get("command"), f"{name}: command set; the image's entrypoint is `ksplit run`")

    # Arguments: `ksplit run` options only; values after required_argument ones.
    args, opts, i = c.get("args", []), {}, 0
    while i < len(args):
        a = args[i]
        if not check(a.startswith("--") and a[2:] in run_opts, f"{name}: argument {a!r} is not a ksplit run option"):
            i += 1
            continue
        if run_opts[a[2:]] == "required_argument":
            check(i + 1 < len(args), f"{name}: {a} needs a value")
            opts.setdefault(a, []).append(args[i + 1] if i + 1 < len(args) else None)
            i += 2
        else:
            opts.setdefault(a, []).append(True)
            i += 1
    check("--config" not in opts and "--kubeconfig" not in opts,
          f"{name}: --config/--kubeconfig given; the DaemonSet reads the API through its service account")
    check(opts.get("--gateway-class", []) == classes,
          f"{name}: --gateway-class {opts.get('--gateway-class', [])}, want {classes}")
    env = {e["name"]: e for e in c.get("env", [])}
    for a in args:
        for var in re.findall(r"\$\((\w+)\)", a):
            check(var in env, f"{name}: argument {a!r} uses $({var}), which env does not define")
    maddr = (opts.get("--metrics-addr") or [""])[0] or ""
    m = re.fullmatch(r"(.+):(\d+)", maddr)
    check(m is not None, f"{name}: --metrics-addr {maddr!r}: want ADDR:PORT (the probes need the server)")
    check(m is None or not m.group(1).startswith("127.") and m.group(1) != "[::1]",
          f"{name}: --metrics-addr {maddr}: the kubelet's probes cannot reach a loopback address")
    if "NODE_IP" in maddr:
        check(env.get("NODE_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") in
              ("status.podIP", "status.hostIP"), f"{name}: NODE_IP is not the pod's (the node's) IP")
    port = int(m.group(2)) if m else None
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        p = g.get("port")
        p = ports.get(p) if isinstance(p, str) else p
        check(g.get("path") == path and p == port,
              f"{name}: {probe}: httpGet {g.get('path')} port {p}, want {path} on the --metrics-addr port {port}")

    # Mounts: the host's bpffs and cgroup mount at their own paths.
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {vm["mountPath"]: vm for vm in c.get("volumeMounts", [])}
    sc = c.get("securityContext", {})
    privileged = sc.get("privileged") is True
    for path in ("/sys/fs/bpf", "/sys/fs/cgroup"):
        vm = mounts.get(path)
        if not check(vm is not None, f"{name}: nothing mounted at {path}"):
            continue
        hp = vols.get(vm["name"], {}).get("hostPath", {}).get("path")
        check(hp == path, f"{name}: {path} is mounted from {hp}, want hostPath {path}")
        check(not vm.get("readOnly"), f"{name}: {path} is read-only")
    bpf_prop = mounts.get("/sys/fs/bpf", {}).get("mountPropagation")
    check(bpf_prop == "HostToContainer" or (bpf_prop == "Bidirectional" and privileged),
          f"{name}: /sys/fs/bpf mountPropagation {bpf_prop}: want HostToContainer (Bidirectional "
          f"needs privileged: true)")
    check(opts.get("--cgroup") == ["/sys/fs/cgroup"],
          f"{name}: --cgroup {opts.get('--cgroup')}, want [/sys/fs/cgroup] (the host's cgroup2 root mounted there)")

    # Privileges: image-test's set, nothing more.
    check(not privileged, f"{name}: privileged: true; the agent runs with capabilities (make image-test checks)")
    check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
    cap = sc.get("capabilities", {})
    check(cap.get("drop") == ["ALL"], f"{name}: capabilities.drop {cap.get('drop')}, want [ALL]")
    check(set(cap.get("add", [])) == caps,
          f"{name}: capabilities.add {sorted(cap.get('add', []))}, want {sorted(caps)} (scripts/image-test.sh CAPS)")
    print(f"[deploy-test] {name}: {len(objs)} objects, {len(got)} resources x [list, watch], "
          f"{len(status_res)} x [get] + /status [update], leases, args {' '.join(args)}: "
          + ("ok" if not fails_here() else f"{len(fails_here())} problem(s)"))


check_render("deploy/base", objects(sys.argv[1]), [])
check_render("deploy/overlays/lattice", objects(sys.argv[2]), ["amazon-vpc-lattice"])
for f in fails:
    print(f"[deploy-test] FAIL: {f}", file=sys.stderr)
sys.exit(1 if fails else 0)
EOF
echo "[deploy-test] PASS"
