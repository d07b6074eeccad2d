"""deploy/kubernetes, proven without a cluster: both overlays render (kubectl kustomize), every
object validates against Kubernetes 1.30's strict schemas (kubernetes-validate) or, for the
operators' custom resources, against our own schemas in deploy/kubernetes/schemas (written by
hand from the operators' documentation), and checkov's pod-security checks pass with every skip
explained. Then the promises the manifests make are checked one by one (probes, requests and
limits, non-root, no Service in front of a worker, who may reach whom), each check also shown to
fail on a manifest broken on purpose.

Offline and quick: kubectl and the schemas come from .venv, checkov from .venv-checkov
(scripts/bootstrap.sh), and checkov is told not to download anything.
"""
import copy
import functools
import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from healthguard.broker import ALERT_LANES, dead_letter_queue, retry_queue
from healthguard.settings import PLACEHOLDER, ConfigError, ServiceSettings

REPO = Path(__file__).resolve().parents[1]
KUBE = REPO / "deploy" / "kubernetes"
OVERLAYS = ("single-site", "group")
SCHEMAS = KUBE / "schemas"
POLICY_SKIPS = KUBE / "policy-skips.yaml"
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# kubernetes-validate reads its multi-megabyte definitions file again for every object; the files
# never change during a run, so read each once (the schemas are only read, never modified).
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents)
# The oldest Kubernetes the manifests are for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())

SERVICES = ("alert-ingestion", "incident-management", "oncall", "notification")
SERVICE_PACKAGES = {name: name.replace("-", "_") for name in SERVICES}
PORTS = {"alert-ingestion": 8001, "incident-management": 8002, "oncall": 8003, "notification": 8004}
# The one Service allowed in front of a worker: alert ingestion's HL7 MLLP listener.
HL7_SERVICE, MLLP_PORT = "alert-ingestion-hl7", 2575
WORKER_HEALTHCHECK = ["python", "-m", "healthguard.healthcheck", "--worker"]
# checkov's checks of the promises the issue asks for, each of which every Deployment must pass:
# probes (8, 9), CPU and memory requests and limits (10-13), no privilege escalation (20), a
# read-only root filesystem (22), no root (23, 40), no NET_RAW / all capabilities dropped (28, 37),
# the runtime's seccomp profile (31), no API token mounted (38).
POD_SECURITY_CHECKS = ("CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13",
                       "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_31", "CKV_K8S_37",
                       "CKV_K8S_38", "CKV_K8S_40")
# The pods that may open connections to PostgreSQL and RabbitMQ.
DATABASE_CLIENTS = {*SERVICES, "healthguard-migrate"}


# ------------------------------------------------------------------------------- rendering
def render(directory: Path) -> list[dict]:
    result = subprocess.run([str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def overlays() -> dict[str, list[dict]]:
    assert KUBECTL.exists(), "no .venv/bin/kubectl: run scripts/bootstrap.sh (requirements-dev.txt)"
    return {name: render(KUBE / "overlays" / name) for name in OVERLAYS}


def of_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects, kind, name):
    (found,) = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


def settings_of(objects) -> dict:
    """The services' settings ConfigMap (named healthguard-settings-<hash of its contents>)."""
    (found,) = [obj for obj in objects if obj["kind"] == "ConfigMap"
                and obj["metadata"]["name"].startswith("healthguard-settings-")]
    return found["data"]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def workloads(objects):
    return [obj for obj in objects if obj["kind"] in ("Deployment", "StatefulSet", "Job")]


# ------------------------------------------------------------------------------ validation
def custom_resource_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for path in SCHEMAS.glob("*.json"):
        document = json.loads(path.read_text())
        schemas[(document["apiVersion"], document["kind"])] = document["schema"]
    return schemas


def validation_errors(objects) -> list[str]:
    """Every object against its schema: built-in kinds strictly (an unknown field is an error),
    for every Kubernetes version we support; custom resources against deploy/kubernetes/schemas."""
    custom, errors = custom_resource_schemas(), []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in custom:
            errors += [f"{where}: {error.message} at {'.'.join(map(str, error.absolute_path))}"
                       for error in jsonschema.Draft7Validator(custom[key]).iter_errors(obj)]
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{where}: no schema for {key} (deploy/kubernetes/schemas/README.md)")
                break
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{where} (Kubernetes {version}): {error.message} at "
                              f"{'.'.join(map(str, error.absolute_path))}")
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_renders_and_every_object_validates(overlays, overlay):
    objects = overlays[overlay]
    assert validation_errors(objects) == []
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "Service", "Job", "Ingress", "NetworkPolicy", "PodDisruptionBudget", "Secret"} \
        <= kinds
    namespaces = {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"}
    assert namespaces == {"healthguard"}


def test_the_group_overlay_runs_postgres_pgbouncer_rabbitmq_and_keda_through_their_operators(overlays):
    group = overlays["group"]
    cluster = named(group, "Cluster", "healthguard-db")
    assert cluster["spec"]["instances"] == 3
    pooler = named(group, "Pooler", "healthguard-db-pooler")
    assert pooler["spec"]["cluster"]["name"] == "healthguard-db"
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
    assert named(group, "RabbitmqCluster", "healthguard-rabbitmq")["spec"]["replicas"] == 3
    assert of_kind(group, "StatefulSet") == []  # no hand-run database or broker in the group
    single = overlays["single-site"]
    assert {obj["metadata"]["name"] for obj in of_kind(single, "StatefulSet")} == {"postgres", "rabbitmq"}
    assert not {"Cluster", "Pooler", "RabbitmqCluster", "ScaledObject"} & {obj["kind"] for obj in single}


def test_a_custom_resource_with_a_field_its_operator_does_not_have_is_refused(overlays):
    group = copy.deepcopy(overlays["group"])
    named(group, "Cluster", "healthguard-db")["spec"]["instance"] = 3  # misspelt
    named(group, "ScaledObject", "incident-management-worker")["spec"]["minReplicaCount"] = "2"  # a string
    named(group, "RabbitmqCluster", "healthguard-rabbitmq")["spec"]["replicas"] = -1
    errors = validation_errors(group)
    def refused(where, why):
        return any(where in error and why in error for error in errors)

    assert refused("Cluster/healthguard-db", "'instance' was unexpected"), errors
    assert refused("ScaledObject/incident-management-worker", "is not of type 'integer'"), errors
    assert refused("RabbitmqCluster/healthguard-rabbitmq", "less than the minimum"), errors


def test_a_built_in_object_with_an_unknown_field_is_refused(overlays):
    objects = copy.deepcopy(overlays["single-site"])
    pod_spec(named(objects, "Deployment", "oncall"))["containers"][0]["livenessprobe"] = {}
    errors = validation_errors(objects)
    assert len(errors) == len(KUBERNETES_VERSIONS) and "Deployment/oncall" in errors[0], errors


def test_a_custom_resource_with_a_wrong_value_or_a_missing_field_is_refused(overlays):
    """The enums and required fields of the operators' documentation, one broken value each."""
    group = copy.deepcopy(overlays["group"])
    pooler = named(group, "Pooler", "healthguard-db-pooler")
    pooler["spec"]["pgbouncer"]["poolMode"] = "statement"  # PgBouncer has it, CloudNativePG does not
    del pooler["spec"]["cluster"]
    (trigger,) = named(group, "ScaledObject", "incident-management-worker")["spec"]["triggers"]
    trigger["metadata"]["operation"] = "total"
    trigger["metadata"]["useRegex"] = True  # trigger metadata is strings only
    named(group, "TriggerAuthentication", "healthguard-rabbitmq-management")["spec"]["secretTargetRef"][0] \
        .pop("key")
    named(group, "Cluster", "healthguard-db")["spec"]["affinity"]["podAntiAffinityType"] = "strict"
    named(group, "RabbitmqCluster", "healthguard-rabbitmq")["spec"]["persistence"]["storage"] = "20 GB"
    errors = validation_errors(group)
    expected = [("Pooler/healthguard-db-pooler", "'statement' is not one of ['session', 'transaction']"),
                ("Pooler/healthguard-db-pooler", "'cluster' is a required property"),
                ("ScaledObject/incident-management-worker", "'total' is not one of ['sum', 'max', 'avg']"),
                ("ScaledObject/incident-management-worker", "True is not one of ['true', 'false']"),
                ("TriggerAuthentication/healthguard-rabbitmq-management", "'key' is a required property"),
                ("Cluster/healthguard-db", "'strict' is not one of ['preferred', 'required']"),
                ("RabbitmqCluster/healthguard-rabbitmq", "is not valid under any of the given schemas")]
    for where, why in expected:
        assert any(where in error and why in error for error in errors), (where, why, errors)
    assert len(errors) == len(expected), errors


def test_every_custom_resource_schema_names_the_documentation_it_was_written_from():
    readme = (SCHEMAS / "README.md").read_text()
    for path in SCHEMAS.glob("*.json"):
        document = json.loads(path.read_text())
        assert set(document) == {"title", "apiVersion", "kind", "writtenFrom", "schema"}, path
        pages = document["writtenFrom"]
        assert pages and all(page.startswith("https://") for page in pages), path
        jsonschema.Draft7Validator.check_schema(document["schema"])
        assert path.name in readme, path


# -------------------------------------------------------------------- the pods' promises
def _security(container: dict, pod: dict, name: str):
    return container.get("securityContext", {}).get(name, pod.get("securityContext", {}).get(name))


def workload_problems(objects) -> list[str]:
    """What a workload of the suite must have, as messages naming the workload: probes (not for
    a Job), requests and limits of CPU and memory, a non-root user, no privilege escalation,
    no capabilities, a read-only root filesystem and the runtime's seccomp profile."""
    problems = []
    for workload in workloads(objects):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        pod = pod_spec(workload)
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            what = f"{where}, container {container['name']}"
            if workload["kind"] != "Job":
                for probe in ("livenessProbe", "readinessProbe"):
                    if not container.get(probe):
                        problems.append(f"{what}: no {probe}")
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in container.get("resources", {}).get(bound, {}):
                        problems.append(f"{what}: no {resource} {bound}")
            if _security(container, pod, "runAsNonRoot") is not True:
                problems.append(f"{what}: runAsNonRoot is not true")
            if _security(container, pod, "runAsUser") in (0, None):
                problems.append(f"{what}: runs as root (runAsUser {_security(container, pod, 'runAsUser')})")
            context = container.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{what}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{what}: privileged")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{what}: root filesystem is writable")
            capabilities = context.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
                problems.append(f"{what}: capabilities not all dropped")
            if (_security(container, pod, "seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{what}: seccomp profile is not RuntimeDefault")
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            problems.append(f"{where}: shares the node's namespaces")
        if workload["kind"] == "Deployment" and pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts an API token")
        if pod.get("enableServiceLinks") is not False:
            # Service `oncall` would become ONCALL_PORT=tcp://..., one of our settings' names.
            problems.append(f"{where}: service links on")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions; or a Service's plain map)."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and labels.get(key) in values)
                or (operator == "Exists" and key not in labels)
                or (operator == "DoesNotExist" and key in labels)):
            return False
    return True


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def is_worker(workload: dict) -> bool:
    return pod_labels(workload).get("app.kubernetes.io/component") == "worker"


def worker_service_problems(objects) -> list[str]:
    """No Service may front a worker, except the HL7 listener's, on the MLLP port alone."""
    problems = []
    workers = [obj for obj in workloads(objects) if is_worker(obj)]
    for service in of_kind(objects, "Service"):
        selector = service["spec"].get("selector", {})
        fronted = [w["metadata"]["name"] for w in workers if selects(selector, pod_labels(w))]
        if not fronted:
            continue
        ports = [(port["port"], port.get("targetPort")) for port in service["spec"]["ports"]]
        if service["metadata"]["name"] == HL7_SERVICE and fronted == ["alert-ingestion-worker"] \
                and ports == [(MLLP_PORT, "mllp")]:
            continue
        problems.append(f"Service {service['metadata']['name']} fronts the worker(s) {', '.join(fronted)}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_probes_requests_limits_and_runs_unprivileged(overlays, overlay):
    assert workload_problems(overlays[overlay]) == []
    assert worker_service_problems(overlays[overlay]) == []


def _deployment_container(objects, name):
    return pod_spec(named(objects, "Deployment", name))["containers"][0]


def _drop_liveness(objects):
    del _deployment_container(objects, "incident-management")["livenessProbe"]


def _drop_worker_readiness(objects):
    del _deployment_container(objects, "notification-worker")["readinessProbe"]


def _drop_limits(objects):
    del _deployment_container(objects, "oncall")["resources"]["limits"]


def _drop_memory_request(objects):
    del _deployment_container(objects, "alert-ingestion-worker")["resources"]["requests"]["memory"]


def _run_as_root(objects):
    spec = pod_spec(named(objects, "Deployment", "notification"))
    spec["securityContext"]["runAsUser"] = 0
    spec["securityContext"]["runAsNonRoot"] = False
    spec["containers"][0]["securityContext"].pop("runAsNonRoot")


def _writable_root(objects):
    _deployment_container(objects, "web-ui")["securityContext"]["readOnlyRootFilesystem"] = False


def _service_for_a_worker(objects):
    objects.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "incident-management-worker", "namespace": "healthguard"},
                    "spec": {"selector": {"app.kubernetes.io/name": "incident-management",
                                          "app.kubernetes.io/component": "worker"},
                             "ports": [{"port": 8002}]}})


def _hl7_service_opening_more(objects):
    named(objects, "Service", HL7_SERVICE)["spec"]["ports"].append({"name": "metrics", "port": 9100})


MUTATIONS = {
    "a web process without a liveness probe":
        (_drop_liveness, "Deployment incident-management, container web: no livenessProbe"),
    "a worker without a readiness probe":
        (_drop_worker_readiness, "Deployment notification-worker, container worker: no readinessProbe"),
    "a web process without limits":
        (_drop_limits, "Deployment oncall, container web: no cpu limits"),
    "a worker without a memory request":
        (_drop_memory_request, "Deployment alert-ingestion-worker, container worker: no memory requests"),
    "a web process running as root":
        (_run_as_root, "Deployment notification, container web: runs as root (runAsUser 0)"),
    "a writable root filesystem":
        (_writable_root, "Deployment web-ui, container nginx: root filesystem is writable"),
    "a Service in front of a worker":
        (_service_for_a_worker,
         "Service incident-management-worker fronts the worker(s) incident-management-worker"),
    "the HL7 Service opening another port":
        (_hl7_service_opening_more, f"Service {HL7_SERVICE} fronts the worker(s) alert-ingestion-worker"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_manifest_broken_on_purpose_fails_the_checks(overlays, mutation):
    broken = copy.deepcopy(overlays["group"])
    mutate, expected = MUTATIONS[mutation]
    mutate(broken)
    assert expected in workload_problems(broken) + worker_service_problems(broken)


# ------------------------------------------------------------------- the image and compose
def test_the_workloads_run_the_commands_of_compose_from_one_image(overlays):
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for overlay, objects in overlays.items():
        for name in SERVICES:
            for deployment in (name, f"{name}-worker"):
                container = _deployment_container(objects, deployment)
                assert container["command"] == compose[deployment]["command"], (overlay, deployment)
                assert container["image"].startswith("healthguard-ops/services:"), (overlay, deployment)
            web = _deployment_container(objects, name)
            assert {"name": "PORT", "value": str(PORTS[name])} in web["env"]
            # The settings by their hashed name: a changed setting rolls the pods.
            (source,) = web["envFrom"]
            config_maps = {cm["metadata"]["name"] for cm in of_kind(objects, "ConfigMap")}
            assert source["configMapRef"]["name"].startswith("healthguard-settings-")
            assert source["configMapRef"]["name"] in config_maps
            assert web["ports"][0]["containerPort"] == PORTS[name]
        migrate = pod_spec(named(objects, "Job", "healthguard-migrate"))["containers"][0]
        assert migrate["command"] == compose["migrate"]["command"]
        assert {"name": "HG_DEMO", "value": "0"} in migrate["env"]


def test_the_probes_are_health_for_liveness_ready_for_readiness_and_the_heartbeat_for_workers(overlays):
    for objects in overlays.values():
        for name in SERVICES:
            web = _deployment_container(objects, name)
            assert web["livenessProbe"]["httpGet"]["path"] == "/health"
            assert web["readinessProbe"]["httpGet"]["path"] == "/ready"
            worker = _deployment_container(objects, f"{name}-worker")
            for probe in ("livenessProbe", "readinessProbe"):
                assert worker[probe]["exec"]["command"] == WORKER_HEALTHCHECK


def test_what_the_processes_write_is_on_an_in_memory_volume(overlays):
    """The root filesystem is read-only: the metrics directory, the worker's heartbeat and the
    temp directory (gunicorn's worker files) must be on the pod's emptyDir."""
    for objects in overlays.values():
        settings = settings_of(objects)
        for workload in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
            pod = pod_spec(workload)
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            container = pod["containers"][0]
            mounts = [mount["mountPath"] for mount in container["volumeMounts"]
                      if "emptyDir" in volumes[mount["name"]]]
            assert "/tmp" in mounts, workload["metadata"]["name"]  # noqa: S108
            assert len(pod["containers"]) == 1  # base/container-security.yaml patches container 0
        for path in (settings["PROMETHEUS_MULTIPROC_DIR"], settings["WORKER_HEARTBEAT_FILE"]):
            assert path.startswith("/tmp/")  # noqa: S108


# ------------------------------------------------------------------------------- traffic
def nginx_api_routes() -> dict[str, str]:
    """web-ui/nginx.conf's API prefixes and the service each goes to."""
    conf = (REPO / "web-ui" / "nginx.conf").read_text()
    upstreams = {var: host for var, host in re.findall(r"set \$(\w+)\s+http://([\w-]+):\d+;", conf)}
    routes = {}
    api_location = r"location ~ \^/api/v1/\(?([\w|-]+?)\)?\(/\|\$\) \{\s*proxy_pass \$(\w+);"
    for group, var in re.findall(api_location, conf):
        for prefix in group.split("|"):
            routes[f"/api/v1/{prefix}"] = upstreams[var]
    return routes


def test_the_ingress_routes_the_api_as_the_web_uis_nginx_does(overlays):
    routes = nginx_api_routes()
    assert len(routes) >= 10
    for objects in overlays.values():
        paths = {path["path"]: path["backend"]["service"]["name"]
                 for path in named(objects, "Ingress", "healthguard")["spec"]["rules"][0]["http"]["paths"]}
        assert {path: service for path, service in paths.items() if path.startswith("/api/")} == routes
        assert paths["/"] == "web-ui"
        status = named(objects, "Ingress", "healthguard-status")
        status_paths = status["spec"]["rules"][0]["http"]["paths"]
        assert {p["path"]: p["backend"]["service"]["name"] for p in status_paths} \
            == {f"/ready/{name}": name for name in SERVICES}
        assert status["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/ready"


def test_websockets_stay_open_through_the_ingress(overlays):
    for objects in overlays.values():
        socket = named(objects, "Ingress", "healthguard-websocket")
        (path,) = socket["spec"]["rules"][0]["http"]["paths"]
        assert (path["path"], path["backend"]["service"]["name"]) == ("/ws", "notification")
        annotations = socket["metadata"]["annotations"]
        # An hour, as web-ui/nginx.conf's /ws: far above the service's ping (WS_PING_SECONDS 25),
        # for either NGINX controller (ingress-nginx in seconds, F5's with a unit).
        for direction in ("read", "send"):
            assert int(annotations[f"nginx.ingress.kubernetes.io/proxy-{direction}-timeout"]) >= 3600
            assert int(annotations[f"nginx.org/proxy-{direction}-timeout"].removesuffix("s")) >= 3600
        assert annotations["nginx.org/websocket-services"] == "notification"


def admitted(objects, target_labels: dict, port=None) -> list[dict]:
    """The `from` peers of every NetworkPolicy rule that admits traffic to pods with these labels
    (on this port, when given: a named or numbered port, as written in the policy)."""
    peers = []
    for policy in of_kind(objects, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], target_labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if port is None or not ports or port in ports:
                peers += rule.get("from", [{"anything": True}])
    return peers


def test_network_policies_refuse_by_default_and_nothing_reaches_a_worker(overlays):
    for objects in overlays.values():
        deny = named(objects, "NetworkPolicy", "default-deny-ingress")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                      "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
        for workload in of_kind(objects, "Deployment"):
            if not is_worker(workload):
                continue
            name, labels = workload["metadata"]["name"], pod_labels(workload)
            # Prometheus scrapes the worker's own metrics port, and nothing else reaches it there.
            assert admitted(objects, labels, "metrics") == [prometheus], name
            assert {"name": "metrics", "containerPort": 9100} in _deployment_container(objects, name)["ports"]
            assert admitted(objects, labels, "http") == [], name
            other = [peer for peer in admitted(objects, labels) if peer != prometheus]
            if name == "alert-ingestion-worker":
                # The HL7 listener, from the device network's addresses only, on MLLP only.
                assert other == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
                assert admitted(objects, labels, "mllp") == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
            else:
                assert other == [], name


def test_only_the_ingress_controller_reaches_the_web_processes(overlays):
    def from_namespace(namespace, pods):
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": pods}}}

    # The community's ingress-nginx, or F5's NGINX Ingress Controller (base/ingress.yaml).
    controllers = [from_namespace("ingress-nginx", "ingress-nginx"),
                   from_namespace("nginx-ingress", "nginx-ingress")]
    prometheus = from_namespace("monitoring", "prometheus")
    for objects in overlays.values():
        for name in (*SERVICES, "web-ui"):
            peers = admitted(objects, pod_labels(named(objects, "Deployment", name)))
            expected = [*controllers, prometheus]
            if name == "oncall":  # incident management asks who is available
                expected.append({"podSelector": {"matchLabels": {
                    "app.kubernetes.io/name": "incident-management"}}})
            assert sorted(map(json.dumps, peers)) == sorted(map(json.dumps, expected)), name


def _pods_admitted_from_the_namespace(objects, target_labels, port) -> set[str]:
    """Which of the suite's own pods (by app.kubernetes.io/name) may connect on this port."""
    names = {pod_labels(w).get("app.kubernetes.io/name"): pod_labels(w) for w in workloads(objects)}
    allowed = set()
    for peer in admitted(objects, target_labels, port):
        if "podSelector" in peer and "namespaceSelector" not in peer:
            allowed |= {name for name, labels in names.items() if selects(peer["podSelector"], labels)}
    return allowed


def test_only_the_services_reach_postgres_and_rabbitmq(overlays):
    single = overlays["single-site"]
    for target, port in ((("postgres", "database"), "postgres"), (("rabbitmq", "broker"), "amqp")):
        labels = {"app.kubernetes.io/name": target[0], "app.kubernetes.io/component": target[1]}
        assert _pods_admitted_from_the_namespace(single, labels, port) == DATABASE_CLIENTS, target
    group = overlays["group"]
    postgres = {"cnpg.io/cluster": "healthguard-db"}
    assert _pods_admitted_from_the_namespace(group, postgres, 5432) == DATABASE_CLIENTS
    pgbouncer = {"cnpg.io/poolerName": "healthguard-db-pooler"}
    assert _pods_admitted_from_the_namespace(group, pgbouncer, 5432) \
        == {"incident-management", "oncall", "notification"}
    rabbitmq = {"app.kubernetes.io/name": "healthguard-rabbitmq"}
    assert _pods_admitted_from_the_namespace(group, rabbitmq, 5672) == set(SERVICES)


# ------------------------------------------------------------------------------- scaling
def test_the_group_keeps_two_of_everything_and_autoscales_the_web_processes_and_alert_workers(overlays):
    group = overlays["group"]
    hpas = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(group, "HorizontalPodAutoscaler")}
    assert set(hpas) == set(SERVICES)
    for hpa in hpas.values():
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
    (scaled,) = of_kind(group, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "incident-management-worker"
    autoscaled = {**{name: hpa["spec"]["minReplicas"] for name, hpa in hpas.items()},
                  "incident-management-worker": scaled["spec"]["minReplicaCount"]}
    budgets = of_kind(group, "PodDisruptionBudget")
    for deployment in of_kind(group, "Deployment"):
        name = deployment["metadata"]["name"]
        if name in autoscaled:
            # The autoscaler owns the count: a `replicas` here would reset it at every apply.
            assert "replicas" not in deployment["spec"], name
            assert autoscaled[name] >= 2, name
        else:
            assert deployment["spec"]["replicas"] >= 2, name
        (budget,) = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert budget["spec"]["maxUnavailable"] == 1, name


# Connections a worker holds besides its pool: a LISTEN each for the outbox relay and the task
# woken by NOTIFY (alert ingestion: the PCD-05 sender; incident management: the assignment retrier).
LISTENERS = {"alert-ingestion-worker": 2, "incident-management-worker": 2}


def postgres_connections_at_most(objects) -> tuple[int, int, int]:
    """(direct sessions, PgBouncer clients, PgBouncer's server connections) with every Deployment
    at its autoscaler's maximum and every pool full (DB_POOL_MAX a process)."""
    settings = settings_of(objects)
    pool = int(settings["DB_POOL_MAX"])
    most = {hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]["maxReplicas"]
            for hpa in of_kind(objects, "HorizontalPodAutoscaler")}
    most |= {so["spec"]["scaleTargetRef"]["name"]: so["spec"]["maxReplicaCount"]
             for so in of_kind(objects, "ScaledObject")}
    direct = clients = 0
    for workload in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        name = workload["metadata"]["name"]
        container = pod_spec(workload)["containers"][0]
        urls = [env for env in container.get("env", [])
                if env["name"] in ("DATABASE_URL", "MIGRATION_DATABASE_URL")]
        if not urls:
            continue
        replicas = most.get(name, workload["spec"].get("replicas", 1))
        command = container["command"]
        if workload["kind"] == "Job":
            per_pod = 1  # the migrator's one connection
        elif command[0] == "gunicorn":
            workers = command[command.index("--workers") + 1] if "--workers" in command \
                else settings["GUNICORN_WORKERS"]
            per_pod = int(workers) * pool
        else:
            per_pod = pool + LISTENERS.get(name, 0)
        pooled = urls[0]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
        if pooled:
            clients += replicas * per_pod
        else:
            direct += replicas * per_pod
    server = 0
    for pooler in of_kind(objects, "Pooler"):
        parameters = pooler["spec"]["pgbouncer"]["parameters"]
        server += pooler["spec"]["instances"] * (int(parameters["default_pool_size"])
                                                 + int(parameters["reserve_pool_size"]))
    return direct, clients, server


def test_the_group_fits_postgres_connection_budget_at_the_autoscalers_maxima(overlays):
    """README's rule ("Connection budget"): the services' connections stay within 80% of
    max_connections, the rest is the administrator's; docs/SCALING.md gives these numbers."""
    group = overlays["group"]
    direct, clients, server = postgres_connections_at_most(group)
    parameters = named(group, "Cluster", "healthguard-db")["spec"]["postgresql"]["parameters"]
    assert direct + server <= 0.8 * int(parameters["max_connections"]), (direct, server)
    (pooler,) = of_kind(group, "Pooler")
    assert clients <= int(pooler["spec"]["pgbouncer"]["parameters"]["max_client_conn"]), clients
    assert (direct, clients, server) == (229, 272, 50)  # the figures docs/SCALING.md explains


def test_keda_counts_the_four_alert_lanes_and_nothing_else(overlays):
    (scaled,) = of_kind(overlays["group"], "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    metadata = trigger["metadata"]
    assert (metadata["mode"], metadata["useRegex"], metadata["operation"], metadata["protocol"]) \
        == ("QueueLength", "true", "sum", "http")
    lanes = re.compile(metadata["queueName"])
    assert all(lanes.search(lane) for lane in ALERT_LANES)
    for lane in ALERT_LANES:
        assert not lanes.search(dead_letter_queue(lane))
        assert not lanes.search(retry_queue(lane, 1.0))
    assert not lanes.search("notifications")


# ------------------------------------------------------------------------------- secrets
def test_the_placeholder_secrets_hold_no_working_value(overlays):
    for objects in overlays.values():
        for secret in of_kind(objects, "Secret"):
            values = secret.get("stringData", {})
            assert values and "data" not in secret
            # The services refuse `change-me`; the servers refuse an empty password.
            for key, value in values.items():
                assert value in (PLACEHOLDER, "") or key == "rabbitmq-user", (secret["metadata"]["name"], key)
        settings = named(objects, "Secret", "healthguard-secrets")["stringData"]
        with pytest.raises(ConfigError, match="placeholder"):
            ServiceSettings.load({"DATABASE_URL": settings["database-url"],
                                  "RABBITMQ_URL": settings["rabbitmq-url"],
                                  "SERVICE_TOKEN": settings["service-token"]})


# ------------------------------------------------------------------------------- checkov
def test_checkov_passes_the_pod_security_checks_with_every_skip_explained(overlays, tmp_path):
    """checkov's Kubernetes checks over both overlays, and over a copy of the group broken on
    purpose (a Deployment as root without probes), which must fail the same checks."""
    assert CHECKOV.exists(), "no .venv-checkov/bin/checkov: run scripts/bootstrap.sh"
    skips = yaml.safe_load(POLICY_SKIPS.read_text())
    assert all(isinstance(why, str) and len(why) > 40 for why in skips.values()), skips
    broken = copy.deepcopy(overlays["group"])
    _run_as_root(broken)
    _drop_liveness(broken)
    for obj in broken:
        if "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = "broken"
    for name, objects in {**overlays, "broken": broken}.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(objects))
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    command = [str(CHECKOV), "--framework", "kubernetes", "--skip-download", "--compact", "--output", "json",
               "--skip-check", ",".join(skips)]
    for name in (*OVERLAYS, "broken"):
        command += ["--file", str(tmp_path / f"{name}.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0
    results = report["results"]

    def where(check):
        return check["resource"].split(".")[1]  # Kind.namespace.name

    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"] if where(c) != "broken"]
    assert failed == []
    broken_failures = {(c["check_id"], c["resource"]) for c in results["failed_checks"]
                       if where(c) == "broken"}
    assert ("CKV_K8S_8", "Deployment.broken.incident-management") in broken_failures  # no liveness probe
    assert ("CKV_K8S_23", "Deployment.broken.notification") in broken_failures  # root containers admitted
    # Skips by annotation carry their reason.
    for check in results["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment") or "") > 40, check["resource"]
    # The checks that matter were run on every Deployment and passed (not merely absent).
    passed = {(c["check_id"], c["resource"]) for c in results["passed_checks"]}
    for overlay, objects in overlays.items():
        for deployment in of_kind(objects, "Deployment"):
            resource = f"Deployment.healthguard.{deployment['metadata']['name']}"
            for check_id in POD_SECURITY_CHECKS:
                assert (check_id, resource) in passed, (overlay, check_id, resource)


def test_kubectl_is_the_pinned_one():
    """The renderer every machine uses (requirements-dev.txt), not whatever kubectl is on PATH."""
    assert KUBECTL.exists()
    version = subprocess.run([str(KUBECTL), "version", "--client", "-o", "json"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    assert json.loads(version)["kustomizeVersion"].startswith("v5."), version
