#!/usr/bin/env python3
"""Checks of the deployment files against the binaries the build produces.

  deploy_checks.py ComposeTest      deploy/compose/docker-compose.yml (+ .env.example)
  deploy_checks.py KubernetesTest   deploy/k8s (base, components, overlays)
  deploy_checks.py DockerfileTest   deploy/Dockerfile (+ .dockerignore)

The configuration reference is read at test time from each binary's --help (every setting
with its LABELLOOP_* variable, kind, default and choices), so a setting added or renamed
in a service is checked without editing this file. Binaries come from LABELLOOP_BIN_DIR
(set by tests/run), else from LABELLOOP_DEFAULT_BIN_DIR (set by CMake).
"""

import base64
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

SOURCE_DIR = os.environ.get("LABELLOOP_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN_DIR = os.environ.get("LABELLOOP_BIN_DIR") or os.environ.get("LABELLOOP_DEFAULT_BIN_DIR", "")
COMPOSE_DIR = os.path.join(SOURCE_DIR, "deploy", "compose")
K8S_DIR = os.path.join(SOURCE_DIR, "deploy", "k8s")
DOCKERFILE = os.path.join(SOURCE_DIR, "deploy", "Dockerfile")
HEALTHCHECK_BINARY = "labelloop-healthcheck"
# Set by every process but not a setting of its own: the .env file to read.
ENV_FILE_VARIABLE = "LABELLOOP_ENV_FILE"


# ---------------------------------------------------------------- the binaries

def clean_env(**extra):
    """A minimal environment: no LABELLOOP_* or compose variables of the caller leak in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
           "LANG": "C.UTF-8"}
    env.update(extra)
    return env


@functools.lru_cache(maxsize=None)
def binaries_target():
    """The executables of the CMake target labelloop_binaries (tests/e2e/CMakeLists.txt)."""
    with open(os.path.join(SOURCE_DIR, "tests", "e2e", "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"add_custom_target\(labelloop_binaries DEPENDS([^)]*)\)", f.read())
    if not m:
        raise AssertionError("tests/e2e/CMakeLists.txt defines no labelloop_binaries target")
    return tuple(sorted(m.group(1).split()))


@functools.lru_cache(maxsize=None)
def service_binaries():
    """The service binaries the build produces: labelloop_binaries without the probe."""
    if not BIN_DIR or not os.path.isdir(BIN_DIR):
        raise AssertionError(f"binary folder '{BIN_DIR}' not found: set LABELLOOP_BIN_DIR to "
                             "the build's bin/ (tests/run does) and build labelloop_binaries")
    names = [n for n in binaries_target() if n != HEALTHCHECK_BINARY]
    for name in binaries_target():
        if not os.access(os.path.join(BIN_DIR, name), os.X_OK):
            raise AssertionError(f"{name} (target labelloop_binaries) is not in {BIN_DIR}")
    if len(names) < 5:
        raise AssertionError(f"expected the five service binaries, the target has {names}")
    return tuple(names)


class Setting:
    def __init__(self, flag, kind, env):
        self.flag, self.kind, self.env = flag, kind, env
        self.default = None
        self.required = False
        self.secret = False
        self.choices = []
        self.help = ""

    def check_value(self, value):
        """Returns an error message when `value` would be refused at start-up, else ''."""
        value = str(value)
        if "${" in value or "$(" in value:
            return ""  # resolved by the orchestrator, not checkable here
        if self.kind == "integer" and not re.fullmatch(r"-?\d+", value):
            return f"'{value}' is not an integer"
        if self.kind == "number":
            try:
                float(value)
            except ValueError:
                return f"'{value}' is not a number"
        if self.kind == "bool" and value.lower() not in (
                "1", "0", "true", "false", "yes", "no", "on", "off"):
            return f"'{value}' is not a bool"
        if self.choices and value not in self.choices:
            return f"'{value}' is not one of {self.choices}"
        if self.required and not value:
            return "is required and empty"
        minimum = re.search(r"at least (\d+) characters", self.help)
        if minimum and value and len(value) < int(minimum.group(1)):
            return f"shorter than the {minimum.group(1)} characters the binary demands"
        return ""


@functools.lru_cache(maxsize=None)
def settings_of(binary):
    """{LABELLOOP_X: Setting} parsed from `binary --help`."""
    path = os.path.join(BIN_DIR, binary)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{binary} is not a binary the build produces (not in {BIN_DIR})")
    with tempfile.TemporaryDirectory() as cwd:  # no ./.env is picked up
        out = subprocess.run([path, "--help"], cwd=cwd, env=clean_env(), capture_output=True,
                             text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"{binary} --help exited {out.returncode}: {out.stderr}")
    settings = {}
    current = None
    for line in out.stdout.splitlines():
        m = re.match(r"^  --([a-z0-9-]+) <([a-z]+)>\s+env (LABELLOOP_[A-Z0-9_]+)\s*$", line)
        if m:
            current = Setting(m.group(1), m.group(2), m.group(3))
            settings[current.env] = current
            continue
        if current is not None and line.startswith("      "):
            text = line.strip()
            current.help = text
            choices = re.search(r"\(one of:([^)]*)\)", text)
            if choices:
                current.choices = choices.group(1).split()
            default = re.search(r"\[default: (.*)\]$", text)
            if default:
                current.default = "" if default.group(1) == '""' else default.group(1)
            current.required = text.endswith("[required]")
            current.secret = "[secret;" in text
            current = None
    for must in ("LABELLOOP_GRPC_PORT", "LABELLOOP_PG_URL", ENV_FILE_VARIABLE):
        if must not in settings:
            raise AssertionError(f"{binary} --help lists no {must}: has its format changed? "
                                 f"Output:\n{out.stdout}")
    return settings


def effective(binary, env, name):
    """The value `binary` runs with for setting env var `name`, given the variables set."""
    if name in env:
        return str(env[name])
    return settings_of(binary)[name].default


def check_env_against_binary(binary, env, where, secrets_hidden=False):
    """Problems with the variables `env` set for `binary` (unknown, ill-typed, missing).
    secrets_hidden: secrets must come from elsewhere (a Kubernetes Secret: value None)."""
    problems = []
    known = settings_of(binary)
    for name, value in sorted(env.items()):
        if name not in known:
            problems.append(f"{where}: {name} is not a setting of {binary} (see {binary} --help)")
            continue
        if value is None:
            continue  # value from a Secret/ConfigMap key we cannot see
        error = known[name].check_value(value)
        if error:
            problems.append(f"{where}: {name}={value}: {error}")
    for name, setting in known.items():
        if setting.required and name not in env:
            problems.append(f"{where}: required setting {name} of {binary} is not set")
        # In a container, a default that points at this host (PostgreSQL, Redis, another
        # service) reaches nothing: it must be set. So must every secret.
        if name not in env and re.search(r"(127\.0\.0\.1|localhost)", setting.default or ""):
            problems.append(f"{where}: {name} must be set: {binary}'s default "
                            f"'{setting.default}' points at the container itself")
        if setting.secret and name not in env:
            problems.append(f"{where}: secret setting {name} of {binary} is not set")
        if secrets_hidden and (setting.secret or name == "LABELLOOP_PG_URL") \
                and env.get(name) is not None:
            problems.append(f"{where}: {name} is a literal value; take it from a Secret")
    return problems


def binary_of(command, where):
    """The labelloop binary a container command runs, or an AssertionError."""
    if isinstance(command, str):
        command = command.split()
    if not command:
        raise AssertionError(f"{where}: no command: the image's default (the gateway) would run;"
                             " name the binary explicitly")
    name = os.path.basename(str(command[0]))
    if name not in service_binaries():
        raise AssertionError(f"{where}: command '{name}' is not a service binary the build "
                             f"produces ({', '.join(service_binaries())})")
    return name


def parse_duration_seconds(text):
    """'1m30s' / '15s' / 20 -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", str(text)):
        total += float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def split_host_port(value):
    m = re.fullmatch(r"(?:dns:///)?([A-Za-z0-9.-]+):(\d+)", str(value))
    return (m.group(1), int(m.group(2))) if m else None


# ---------------------------------------------------------------- docker-compose

def compose_command():
    exe = shutil.which("docker-compose")
    if exe is None:
        raise AssertionError("docker-compose not found: install Debian's docker-compose package "
                             "(it is in LL_PACKAGES; tests/run installs it)")
    return exe


def run_compose_config(compose_file, env_file):
    """`docker-compose config` output (interpolated, anchors resolved); needs no engine."""
    args = [compose_command(), "--project-directory", os.path.dirname(compose_file),
            "-f", compose_file]
    if env_file:
        args += ["--env-file", env_file]
    # DOCKER_HOST to a socket that does not exist: proves no engine is needed.
    return subprocess.run(args + ["config"], capture_output=True, text=True, timeout=60,
                          env=clean_env(DOCKER_HOST="unix:///nonexistent/docker.sock"))


@functools.lru_cache(maxsize=None)
def compose_model():
    out = run_compose_config(os.path.join(COMPOSE_DIR, "docker-compose.yml"),
                             os.path.join(COMPOSE_DIR, ".env.example"))
    if out.returncode != 0:
        raise AssertionError(f"docker-compose config failed:\n{out.stderr}")
    return yaml.safe_load(out.stdout)


def compose_env(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def container_port(entry):
    """The container side of a published port: long syntax (compose v2) or short (v1)."""
    if isinstance(entry, dict):
        return int(entry["target"])
    return int(str(entry).split("/")[0].split(":")[-1])


def volume_source(entry):
    """The source of a service volume: long syntax (compose v2) or short (v1)."""
    if isinstance(entry, dict):
        return entry.get("source") if entry.get("type") == "volume" else None
    return str(entry).split(":")[0]


def is_labelloop_service(service):
    return "build" in service or str(service.get("image", "")).startswith("labelloop")


def compose_ports(binary, env):
    """{role: port} the binary listens on with these variables (grpc, metrics, http)."""
    ports = {}
    for role in ("grpc", "metrics", "http"):
        name = f"LABELLOOP_{role.upper()}_PORT"
        if name in settings_of(binary):
            ports[role] = int(effective(binary, env, name))
    return ports


class ComposeTest(unittest.TestCase):
    maxDiff = None

    def services(self):
        return compose_model()["services"]

    def labelloop_services(self):
        return {n: s for n, s in self.services().items() if is_labelloop_service(s)}

    def test_config_validates_without_an_engine(self):
        model = compose_model()
        self.assertIn("services", model)
        self.assertIn("volumes", model)

    def test_invalid_file_is_rejected(self):
        # The validator must really validate: an unknown key and a missing secret both fail.
        with open(os.path.join(COMPOSE_DIR, "docker-compose.yml"), encoding="utf-8") as f:
            text = f.read()
        with tempfile.TemporaryDirectory() as tmp:
            broken = os.path.join(tmp, "docker-compose.yml")
            with open(broken, "w", encoding="utf-8") as f:
                f.write(text.replace("  redis:\n    image: redis:7\n",
                                     "  redis:\n    image: redis:7\n    no_such_key: 1\n", 1))
            with open(broken, encoding="utf-8") as f:
                self.assertNotEqual(text, f.read(), "the test's edit did not apply")
            out = run_compose_config(broken, os.path.join(COMPOSE_DIR, ".env.example"))
            self.assertNotEqual(out.returncode, 0, "an unknown key was accepted")
            self.assertIn("no_such_key", out.stderr)
        out = run_compose_config(os.path.join(COMPOSE_DIR, "docker-compose.yml"), None)
        self.assertNotEqual(out.returncode, 0,
                            "compose started without POSTGRES_PASSWORD: secrets must be given")

    def test_every_binary_runs_as_a_service(self):
        used = {}
        for name, service in self.labelloop_services().items():
            binary = binary_of(service.get("command"), f"compose service '{name}'")
            used.setdefault(binary, []).append(name)
        self.assertEqual(sorted(used), list(service_binaries()),
                         "each service binary runs as exactly one compose service")
        for binary, names in used.items():
            self.assertEqual(len(names), 1, f"{binary} runs in several services: {names}")

    def test_variables_are_settings_of_the_binary(self):
        problems = []
        for name, service in self.labelloop_services().items():
            binary = binary_of(service.get("command"), f"compose service '{name}'")
            problems += check_env_against_binary(binary, compose_env(service),
                                                 f"compose service '{name}'")
        self.assertEqual(problems, [])

    def test_ports_and_healthchecks_match_the_binary(self):
        for name, service in self.labelloop_services().items():
            binary = binary_of(service.get("command"), name)
            ports = compose_ports(binary, compose_env(service))
            test = service.get("healthcheck", {}).get("test", [])
            self.assertIn(HEALTHCHECK_BINARY, test, f"{name}: healthcheck must use the gRPC probe")
            addr = test[test.index("--addr") + 1]
            self.assertEqual(split_host_port(addr), ("127.0.0.1", ports["grpc"]),
                             f"{name}: healthcheck probes {addr}, the service listens on "
                             f"{ports['grpc']}")
            exposed = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
            published = {container_port(p) for p in service.get("ports", [])}
            self.assertTrue(exposed | published, f"{name}: neither exposes nor publishes a port")
            self.assertLessEqual(exposed | published, set(ports.values()),
                                 f"{name}: exposes a port {binary} does not listen on ({ports})")
            self.assertIn(ports["grpc"], exposed | published, f"{name}: gRPC port not exposed")

    def test_only_the_gateway_is_published(self):
        for name, service in self.services().items():
            if not service.get("ports"):
                continue
            binary = ""
            if is_labelloop_service(service):
                binary = binary_of(service.get("command"), name)
            self.assertEqual(binary, "labelloop-gateway", f"{name} publishes ports")
            ports = compose_ports(binary, compose_env(service))
            published = sorted(container_port(p) for p in service["ports"])
            self.assertEqual(published, sorted([ports["grpc"], ports["http"]]),
                             "the gateway publishes its gRPC and HTTP ports, nothing else")

    def test_addresses_point_at_services_that_listen_there(self):
        services = self.services()
        for name, service in self.labelloop_services().items():
            env = compose_env(service)
            for var, value in env.items():
                if not var.endswith("_ADDR") or value is None:
                    continue
                host_port = split_host_port(value)
                self.assertIsNotNone(host_port, f"{name}: {var}={value} is not host:port")
                host, port = host_port
                self.assertIn(host, services, f"{name}: {var} names no compose service")
                target = services[host]
                target_binary = binary_of(target.get("command"), host)
                self.assertEqual(port, compose_ports(target_binary, compose_env(target))["grpc"],
                                 f"{name}: {var}={value} is not {host}'s gRPC port")
            pg_url = env.get("LABELLOOP_PG_URL", "")
            m = re.match(r"postgres(?:ql)?://[^@]*@([^:/]+):?(\d*)/", pg_url)
            self.assertTrue(m and m.group(1) in services, f"{name}: PG URL host is no service")
            self.assertIn(env.get("LABELLOOP_REDIS_HOST"), services,
                          f"{name}: LABELLOOP_REDIS_HOST names no compose service")

    def test_datastores_healthchecks_volumes_and_order(self):
        services = self.services()
        self.assertTrue(str(services["postgres"]["image"]).startswith("postgres:15"))
        self.assertTrue(str(services["redis"]["image"]).startswith("redis:7"))
        redis_command = " ".join(map(str, services["redis"].get("command", [])))
        self.assertIn("--appendonly yes", redis_command, "Redis must persist with AOF")
        named = set(compose_model().get("volumes", {}))
        for store in ("postgres", "redis"):
            sources = {volume_source(v) for v in services[store].get("volumes", [])}
            self.assertTrue(sources and sources <= named, f"{store}: needs a named volume")
        for name, service in services.items():
            self.assertIn("healthcheck", service, f"{name}: no healthcheck")
            for dep, cond in (service.get("depends_on") or {}).items():
                self.assertIn(dep, services, f"{name} depends on unknown {dep}")
                self.assertEqual(cond.get("condition"), "service_healthy",
                                 f"{name} must wait for {dep} to be healthy")
            if is_labelloop_service(service):
                deps = set(service.get("depends_on") or {})
                self.assertLessEqual({"postgres", "redis"}, deps, f"{name}: waits for datastores")

    def test_stop_grace_exceeds_drain_time(self):
        for name, service in self.labelloop_services().items():
            binary = binary_of(service.get("command"), name)
            grace_ms = int(effective(binary, compose_env(service), "LABELLOOP_SHUTDOWN_GRACE_MS"))
            stop = parse_duration_seconds(service.get("stop_grace_period", "10s"))
            self.assertGreater(stop * 1000, grace_ms,
                               f"{name}: stop_grace_period {stop}s would SIGKILL a "
                               f"{grace_ms} ms drain")

    def test_env_example_documents_every_required_variable(self):
        with open(os.path.join(COMPOSE_DIR, "docker-compose.yml"), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(COMPOSE_DIR, ".env.example"), encoding="utf-8") as f:
            documented = {line.split("=", 1)[0].strip() for line in f
                          if "=" in line and not line.lstrip().startswith("#")}
        for name, operator in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?]|)", text):
            if operator in ("", ":?", "?"):
                self.assertIn(name, documented, f"${{{name}}} has no default and is not in "
                                                ".env.example")


# ---------------------------------------------------------------- Kubernetes

def load_yaml_documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomize_command():
    """A kustomize that builds offline: `kustomize build` or `kubectl kustomize`, else None.
    LABELLOOP_DEPLOY_PYTHON_KUSTOMIZE=1 forces the Python resolution (to test it)."""
    if os.environ.get("LABELLOOP_DEPLOY_PYTHON_KUSTOMIZE") == "1":
        return None
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        probe = subprocess.run(["kubectl", "kustomize", "--help"], capture_output=True,
                               timeout=30, env=clean_env())
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    return None


def kustomization_file(folder):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def read_env_file(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value
    return values


def resolve_kustomization(folder, seen=None):
    """Kustomize resolution in Python (used when no kustomize is installed): checks that
    every listed file exists and parses, and returns the resources with the generated

    ConfigMaps and Secrets (names unhashed; patches are checked but not applied)."""
    seen = seen if seen is not None else set()
    folder = os.path.abspath(folder)
    if folder in seen:
        raise AssertionError(f"kustomization cycle at {folder}")
    seen.add(folder)
    kfile = kustomization_file(folder)
    if kfile is None:
        raise AssertionError(f"{folder}: no kustomization.yaml")
    k = load_yaml_documents(kfile)[0]
    resources = []
    for entry in (k.get("resources") or []) + (k.get("components") or []):
        path = os.path.join(folder, entry)
        if os.path.isdir(path):
            resources += resolve_kustomization(path, seen)
        elif os.path.isfile(path):
            resources += load_yaml_documents(path)
        else:
            raise AssertionError(f"{kfile}: listed '{entry}' does not exist")
    for patch in k.get("patches") or []:
        path = os.path.join(folder, patch["path"]) if "path" in patch else None
        if path is not None:
            if not os.path.isfile(path):
                raise AssertionError(f"{kfile}: patch '{patch['path']}' does not exist")
            for doc in load_yaml_documents(path):
                if not any(r.get("kind") == doc.get("kind") and
                           r["metadata"]["name"] == doc["metadata"]["name"] for r in resources):
                    raise AssertionError(f"{path}: patches {doc.get('kind')}/"
                                         f"{doc['metadata']['name']}, which no resource is")
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in k.get(key) or []:
            data = {}
            for env_file in gen.get("envs") or []:
                data.update(read_env_file(os.path.join(folder, env_file)))
            for literal in gen.get("literals") or []:
                name, _, value = literal.partition("=")
                data[name] = value
            existing = [r for r in resources if r.get("kind") == kind
                        and r["metadata"]["name"] == gen["name"]]
            if gen.get("behavior") == "merge":
                if not existing:
                    raise AssertionError(f"{kfile}: merges into missing {kind} {gen['name']}")
                existing[0].setdefault("data", {}).update(data)
            else:
                resources.append({"apiVersion": "v1", "kind": kind,
                                  "metadata": {"name": gen["name"]}, "data": data})
    return resources


def kustomize_targets():
    """The folders kubectl apply -k is meant for: the base and every overlay."""
    targets = [os.path.join(K8S_DIR, "base")]
    overlays = os.path.join(K8S_DIR, "overlays")
    targets += sorted(os.path.join(overlays, d) for d in os.listdir(overlays)
                      if kustomization_file(os.path.join(overlays, d)))
    return targets


@functools.lru_cache(maxsize=None)
def build_kustomization(folder):
    """(resources, how) for a kustomize target: a real kustomize build when one is
    installed, else the Python resolution."""
    python_resources = resolve_kustomization(folder)  # always: files listed exist and parse
    command = kustomize_command()
    if command is None:
        return python_resources, "python"
    out = subprocess.run(command + [folder], capture_output=True, text=True, timeout=60,
                         env=clean_env())
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(command)} {folder} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d], " ".join(command)


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def container_env(container, resources):
    """{VAR: value or None} a container gets from env and envFrom (None: from a Secret)."""
    env = {}
    for source in container.get("envFrom") or []:
        for ref_kind, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if ref_kind not in source:
                continue
            name = source[ref_kind]["name"]
            found = find(resources, kind, name)
            if found is None:
                raise AssertionError(f"container {container['name']}: envFrom {kind} {name} "
                                     "is not in the manifests")
            for key, value in (found.get("data") or {}).items():
                env[source.get("prefix", "") + key] = value if kind == "ConfigMap" else None
            for key in (found.get("stringData") or {}):
                env[source.get("prefix", "") + key] = None
    for item in container.get("env") or []:
        env[item["name"]] = item.get("value") if "valueFrom" not in item else None
    return env


def find(resources, kind, name):
    for r in resources:
        if r.get("kind") == kind and r["metadata"]["name"] == name:
            return r
    return None


def labelloop_containers(resources):
    """(deployment, container, binary) for every container that runs a labelloop binary."""
    for r in resources:
        if r.get("kind") != "Deployment":
            continue
        for c in pod_spec(r)["containers"]:
            yield r, c, binary_of(c.get("command") or c.get("args"),
                                  f"Deployment {r['metadata']['name']}")


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class KubernetesTest(unittest.TestCase):
    maxDiff = None
    # The Secret the base expects an operator to create; its keys are documented in the
    # base's kustomization.yaml as "#   <key>   <what>" lines.
    EXTERNAL_SECRET = "labelloop-secrets"

    def external_secret_keys(self, name):
        if name != self.EXTERNAL_SECRET:
            return set()
        with open(kustomization_file(os.path.join(K8S_DIR, "base")), encoding="utf-8") as f:
            return set(re.findall(r"^#   ([a-z0-9-]+)\s{2,}\S", f.read(), re.MULTILINE))

    def each_target(self):
        """[(folder, resources, how)] for the base and every overlay."""
        return [(f, *build_kustomization(f)) for f in kustomize_targets()]

    def test_every_yaml_file_parses(self):
        count = 0
        for root, _, files in os.walk(K8S_DIR):
            for name in files:
                if name.endswith((".yaml", ".yml")):
                    for doc in load_yaml_documents(os.path.join(root, name)):
                        self.assertIsInstance(doc, dict, f"{name}: not a mapping")
                        if "kind" in doc and doc["kind"] not in ("Kustomization", "Component"):
                            self.assertIn("apiVersion", doc, name)
                            self.assertIn("name", doc.get("metadata", {}), name)
                    count += 1
        self.assertGreater(count, 5)

    def test_targets_build(self):
        names = [os.path.relpath(f, K8S_DIR) for f in kustomize_targets()]
        self.assertIn("base", names)
        self.assertIn(os.path.join("overlays", "dev"), names)
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                self.assertTrue(resources, f"{folder} builds to nothing")

    def test_every_binary_has_a_deployment(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                binaries = sorted(b for _, _, b in labelloop_containers(resources))
                self.assertEqual(binaries, list(service_binaries()))

    def test_deployments_have_probes_resources_and_a_service(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                services = [r for r in resources if r.get("kind") == "Service"]
                for deployment, c, binary in labelloop_containers(resources):
                    name = deployment["metadata"]["name"]
                    grpc_port = int(effective(binary, container_env(c, resources),
                                              "LABELLOOP_GRPC_PORT"))
                    for probe in ("readinessProbe", "livenessProbe"):
                        self.assertTrue(probe in c, f"{name}: no {probe}")
                        self.assertEqual(c[probe].get("grpc", {}).get("port"), grpc_port,
                                         f"{name}: {probe} must be a gRPC health probe on "
                                         f"{grpc_port}")
                    for part in ("requests", "limits"):
                        for res in ("cpu", "memory"):
                            self.assertTrue(res in c.get("resources", {}).get(part, {}),
                                            f"{name}: no resources.{part}.{res}")
                    container_ports = {p["containerPort"] for p in c.get("ports", [])}
                    self.assertIn(grpc_port, container_ports, f"{name}: gRPC port not declared")
                    named = {p["name"]: p["containerPort"] for p in c.get("ports", [])
                             if "name" in p}
                    labels = deployment["spec"]["template"]["metadata"]["labels"]
                    matching = [s for s in services if selects(s["spec"].get("selector"), labels)]
                    self.assertEqual(len(matching), 1, f"{name}: needs exactly one Service")
                    target_ports = {named.get(p.get("targetPort"), p.get("targetPort", p["port"]))
                                    for p in matching[0]["spec"]["ports"]}
                    self.assertIn(grpc_port, target_ports, f"{name}: Service misses the gRPC port")
                    self.assertLessEqual(target_ports, container_ports,
                                         f"{name}: Service targets a port the pod does not open")
                    self.assertTrue(pod_spec(deployment).get("securityContext", {})
                                    .get("runAsNonRoot"), f"{name}: must run as non-root")

    def test_variables_are_settings_of_the_binary(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                problems = []
                for deployment, c, binary in labelloop_containers(resources):
                    problems += check_env_against_binary(
                        binary, container_env(c, resources),
                        f"Deployment {deployment['metadata']['name']}", secrets_hidden=True)
                self.assertEqual(problems, [])

    def test_secret_references_resolve(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                for deployment, c, _ in labelloop_containers(resources):
                    for item in c.get("env") or []:
                        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                        if ref is None:
                            continue
                        secret = find(resources, "Secret", ref["name"])
                        if secret is not None:
                            keys = set(secret.get("data") or {}) | \
                                set(secret.get("stringData") or {})
                        else:
                            self.assertNotIn("dev", folder, "the dev overlay is self-contained")
                            keys = self.external_secret_keys(ref["name"])
                        self.assertIn(ref["key"], keys, f"{deployment['metadata']['name']}: "
                                      f"{item['name']} refers to missing "
                                      f"{ref['name']}/{ref['key']}")

    def test_secret_values_are_valid_settings(self):
        # Where the manifests generate a Secret (the dev overlay), its values must pass the
        # binary's own rules (e.g. the JWT key's minimum length).
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                for deployment, c, binary in labelloop_containers(resources):
                    for item in c.get("env") or []:
                        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                        secret = find(resources, "Secret", ref["name"]) if ref else None
                        if secret is None or ref["key"] not in (secret.get("data") or {}):
                            continue
                        value = secret["data"][ref["key"]]
                        if how != "python":  # kustomize writes data base64-encoded
                            value = base64.b64decode(value).decode()
                        error = settings_of(binary)[item["name"]].check_value(value)
                        self.assertEqual(error, "", f"{deployment['metadata']['name']}: "
                                         f"{item['name']} from {ref['name']}/{ref['key']}")

    def test_addresses_point_at_services(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                for deployment, c, _ in labelloop_containers(resources):
                    for var, value in container_env(c, resources).items():
                        if not var.endswith("_ADDR") or value is None:
                            continue
                        host_port = split_host_port(value)
                        self.assertIsNotNone(host_port, f"{var}={value} is not host:port")
                        service = find(resources, "Service", host_port[0].split(".")[0])
                        self.assertIsNotNone(service, f"{var}={value}: no such Service")
                        grpc = [p for p in service["spec"]["ports"] if p.get("name") == "grpc"]
                        self.assertEqual([p["port"] for p in grpc], [host_port[1]],
                                         f"{var}={value}: not the Service's gRPC port")

    def test_termination_grace_exceeds_drain(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                for deployment, c, binary in labelloop_containers(resources):
                    grace_ms = int(effective(binary, container_env(c, resources),
                                             "LABELLOOP_SHUTDOWN_GRACE_MS"))
                    pre_stop = c.get("lifecycle", {}).get("preStop", {})
                    sleep = pre_stop.get("exec", {}).get("command", [])
                    pre_stop_s = float(sleep[1]) if sleep[:1] == ["sleep"] else \
                        float(pre_stop.get("sleep", {}).get("seconds", 0))
                    period = pod_spec(deployment).get("terminationGracePeriodSeconds", 30)
                    self.assertGreater(period * 1000, grace_ms + pre_stop_s * 1000,
                                       f"{deployment['metadata']['name']}: terminationGrace"
                                       f"PeriodSeconds {period} < preStop + {grace_ms} ms drain")

    def test_disruption_budgets_and_autoscalers(self):
        for folder, resources, how in self.each_target():
            with self.subTest(target=os.path.relpath(folder, K8S_DIR), built_with=how):
                deployments = {r["metadata"]["name"]: r for r in resources
                               if r.get("kind") == "Deployment"}
                pdbs = [r for r in resources if r.get("kind") == "PodDisruptionBudget"]
                for name, d in deployments.items():
                    labels = d["spec"]["template"]["metadata"]["labels"]
                    self.assertTrue(any(selects(p["spec"]["selector"].get("matchLabels"), labels)
                                        for p in pdbs), f"{name}: no PodDisruptionBudget")
                scaled = {}
                for hpa in (r for r in resources if r.get("kind") == "HorizontalPodAutoscaler"):
                    ref = hpa["spec"]["scaleTargetRef"]
                    self.assertIn(ref["name"], deployments, "HPA targets a missing Deployment")
                    self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
                    binary = binary_of(pod_spec(deployments[ref["name"]])["containers"][0]
                                       .get("command"), ref["name"])
                    scaled[binary] = deployments[ref["name"]]
                self.assertEqual(sorted(scaled), ["labelloop-gateway", "labelloop-labeling",
                                                  "labelloop-training"])
                for binary, d in scaled.items():
                    self.assertNotIn("replicas", d["spec"],
                                     f"{binary}: the HPA owns the replica count")

    def test_dev_overlay_runs_datastores_in_cluster(self):
        resources, _ = build_kustomization(os.path.join(K8S_DIR, "overlays", "dev"))
        for store, image in (("postgres", "postgres:15"), ("redis", "redis:7")):
            sts = find(resources, "StatefulSet", store)
            self.assertIsNotNone(sts, f"dev: no {store} StatefulSet")
            c = pod_spec(sts)["containers"][0]
            self.assertEqual(c["image"], image)
            self.assertIn("readinessProbe", c)
            self.assertIn("limits", c.get("resources", {}))
            self.assertTrue(sts["spec"].get("volumeClaimTemplates"), f"{store}: no volume")
            self.assertIsNotNone(find(resources, "Service", store))
        redis_args = " ".join(pod_spec(find(resources, "StatefulSet", "redis"))
                              ["containers"][0].get("args", []))
        self.assertIn("--appendonly yes", redis_args)
        # The generated PostgreSQL URL names the in-cluster Service.
        secrets = [r for r in resources if r.get("kind") == "Secret"
                   and r["metadata"]["name"].startswith("labelloop-secrets")]
        self.assertEqual(len(secrets), 1)
        data = secrets[0].get("data") or {}
        url = data.get("pg-url", "")
        if "://" not in url:  # kustomize output is base64
            url = base64.b64decode(url).decode()
        self.assertRegex(url, r"@postgres:5432/")

    def test_base_holds_no_secret(self):
        resources, _ = build_kustomization(os.path.join(K8S_DIR, "base"))
        self.assertEqual([r["metadata"]["name"] for r in resources if r.get("kind") == "Secret"],
                         [], "production secrets are created out of band, not in the base")


# ---------------------------------------------------------------- Dockerfile

def dockerfile_stages():
    """[(name, base, [(instruction, arguments)])] with continuation lines joined."""
    with open(DOCKERFILE, encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            stages.append((m.group(2) or str(len(stages)), m.group(1), []))
        elif stages:
            stages[-1][2].append((instruction, args.strip()))
    return stages


def apt_packages(instructions):
    """Package names of every `apt-get install` in the RUN instructions."""
    packages = []
    for instruction, args in instructions:
        if instruction != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            words = command.split()
            if "apt-get" in words and "install" in words:
                for word in words[words.index("install") + 1:]:
                    if not word.startswith("-") and "$" not in word:
                        packages.append(word)
    return packages


def dpkg_owner(paths):
    """{library path: package} using the dpkg database (one call)."""
    candidates = {}
    for path in paths:
        real = os.path.realpath(path)
        options = {path, real}
        for p in list(options):  # merged /usr: dpkg may know either spelling
            options.add(p[4:] if p.startswith("/usr/") else "/usr" + p)
        candidates[path] = options
    everything = sorted({o for opts in candidates.values() for o in opts})
    out = subprocess.run(["dpkg-query", "-S"] + everything, capture_output=True, text=True)
    owner_of = {}
    for line in out.stdout.splitlines():
        package, _, path = line.partition(": ")
        owner_of[path.strip()] = package.split(":")[0].split(",")[0].strip()
    result = {}
    for path, options in candidates.items():
        owners = [owner_of[o] for o in sorted(options) if o in owner_of]
        result[path] = owners[0] if owners else None
    return result


@functools.lru_cache(maxsize=None)
def installed_packages():
    """{package: (depends, essential_or_required)} from the dpkg database."""
    out = subprocess.run(["dpkg-query", "-W", "-f",
                          "${Package}\t${Depends}, ${Pre-Depends}\t${Essential}\t${Priority}\t"
                          "${db:Status-Status}\n"], capture_output=True, text=True, check=True)
    packages = {}
    for line in out.stdout.splitlines():
        name, depends, essential, priority, status = line.split("\t")
        if status != "installed":
            continue
        alternatives = []
        for dep in depends.split(","):
            options = [re.sub(r"[\s(].*", "", o.strip()).split(":")[0] for o in dep.split("|")]
            options = [o for o in options if o]
            if options:
                alternatives.append(options)
        packages[name] = (alternatives, essential == "yes" or priority == "required")
    return packages


def dependency_closure(roots):
    packages = installed_packages()
    closed, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in closed:
            continue
        closed.add(name)
        for options in packages.get(name, ([], False))[0]:
            chosen = next((o for o in options if o in packages), None)
            if chosen:
                todo.append(chosen)
    return closed


class DockerfileTest(unittest.TestCase):
    def stages(self):
        stages = dockerfile_stages()
        self.assertGreaterEqual(len(stages), 2, "a multi-stage build")
        return stages

    def runtime(self):
        return self.stages()[-1]

    def linked_libraries(self):
        """({library path}, {directly needed library path}) of the built binaries."""
        linked, direct = set(), set()
        binaries = list(service_binaries()) + [HEALTHCHECK_BINARY]
        for binary in binaries:
            path = os.path.join(BIN_DIR, binary)
            out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True)
            self.assertNotIn("not found", out.stdout, f"{binary}: unresolved library")
            resolved = {}
            for line in out.stdout.splitlines():
                m = re.match(r"\s*(\S+) => (/\S+)", line)
                if m:
                    resolved[m.group(1)] = m.group(2)
                    linked.add(m.group(2))
            needed = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                                    check=True).stdout
            for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", needed):
                self.assertIn(soname, resolved, f"{binary}: {soname} not resolved by ldd")
                direct.add(resolved[soname])
        return linked, direct

    def test_runtime_packages_cover_every_linked_library(self):
        name, base, instructions = self.runtime()
        listed = apt_packages(instructions)
        self.assertTrue(listed, f"runtime stage '{name}' installs no package")
        for package in listed:
            self.assertIn(package, installed_packages(),
                          f"{package} is not installed here: the list cannot be checked "
                          "(or the name is wrong)")
        linked, direct = self.linked_libraries()
        owners = dpkg_owner(sorted(linked))
        unowned = sorted(p for p, o in owners.items() if o is None)
        self.assertEqual(unowned, [], "libraries no Debian package provides (cannot be in "
                                      "the image by apt)")
        base_system = {p for p, (_, required) in installed_packages().items() if required}
        available = dependency_closure(set(listed) | base_system)
        missing = sorted({f"{owners[p]} ({p})" for p in linked if owners[p] not in available})
        self.assertEqual(missing, [], "linked libraries the runtime image would not have")
        # Libraries linked directly are listed by name, not left to someone else's Depends.
        base_closure = dependency_closure(base_system)
        not_listed = sorted({f"{owners[p]} ({p})" for p in direct
                             if owners[p] not in listed and owners[p] not in base_closure})
        self.assertEqual(not_listed, [], "directly linked, missing from the runtime apt list")
        unused = sorted(set(listed) - set(owners.values()) - {"ca-certificates"})
        if unused:
            print(f"note: runtime packages no binary links yet: {unused}", file=sys.stderr)

    def test_debian_12_bases(self):
        for name, base, _ in self.stages():
            resolved = base.replace("${DEBIAN_TAG}", "bookworm")
            self.assertRegex(resolved, r"^debian:bookworm(-slim)?$", f"stage {name}")
        with open(DOCKERFILE, encoding="utf-8") as f:
            self.assertIn("ARG DEBIAN_TAG=bookworm", f.read())

    def test_build_stage_builds_every_binary_in_release(self):
        build = [i for _, _, ins in self.stages()[:-1] for i in ins]
        runs = " ".join(args for ins, args in build if ins == "RUN")
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", runs)
        self.assertIn("--target labelloop_binaries", runs)
        self.assertIn(HEALTHCHECK_BINARY, binaries_target(), "the HEALTHCHECK's probe is built")
        copies = [args for ins, args in self.runtime()[2] if ins == "COPY"]
        self.assertTrue(any(a.startswith("--from=") and "labelloop-*" in a for a in copies),
                        "the runtime stage copies the built binaries")

    def test_runs_as_non_root_with_a_healthcheck_and_no_secrets(self):
        _, _, instructions = self.runtime()
        users = [args for ins, args in instructions if ins == "USER"]
        self.assertTrue(users, "no USER: the image would run as root")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))
        health = [args for ins, args in instructions if ins == "HEALTHCHECK"]
        self.assertEqual(len(health), 1)
        self.assertIn(HEALTHCHECK_BINARY, health[0])
        self.assertIn("LABELLOOP_GRPC_PORT", health[0])
        for _, _, ins in self.stages():
            for instruction, args in ins:
                if instruction in ("ENV", "ARG"):
                    self.assertNotRegex(args.upper(), r"(PASSWORD|SECRET|TOKEN|PG_URL)",
                                        f"{instruction} {args}: no secrets in the image")
        cmd = [args for ins, args in instructions if ins in ("CMD", "ENTRYPOINT")]
        self.assertTrue(cmd and any(b in cmd[-1] for b in service_binaries()))

    def test_dockerignore_keeps_secrets_and_build_output_out(self):
        with open(os.path.join(SOURCE_DIR, ".dockerignore"), encoding="utf-8") as f:
            patterns = {line.strip() for line in f if line.strip() and not line.startswith("#")}
        for must in (".git", "/build*", "**/.env", ".data"):
            self.assertIn(must, patterns)


if __name__ == "__main__":
    unittest.main()
