"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs on the build machines).

The compose file is validated against the Compose Specification JSON schema
vendored as ``compose-spec.json``: the copy docker-compose 1.29.2 validates
with (upstream docker/compose, tag 1.29.2, build 5becea4c, file
``compose/config/compose_spec.json``; here taken from Debian's
``docker-compose`` 1.29.2-3 package, ``/usr/lib/python3/dist-packages/
compose/config/compose_spec.json``). Where that package is installed
(``apt-get install docker-compose``), ``docker-compose config -q`` runs too.
Then the points that a schema cannot see: what talks to what, with which
credentials, on which volumes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE, DOCKERFILE = REPO / "docker-compose.yml", REPO / "Dockerfile"
SCHEMA = Path(__file__).with_name("compose-spec.json")
ES_IMAGE = re.compile(r"^docker\.elastic\.co/elasticsearch/elasticsearch:9\.\d+\.\d+$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def test_compose_file_follows_the_compose_spec_schema(compose):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency (pip install -e '.[dev]')")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_can_fail(compose):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency (pip install -e '.[dev]')")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "search": {**compose["services"]["search"], "healthcheck": {"test": 1, "every": "5s"}},
        },
    }
    assert not jsonschema.Draft201909Validator(schema).is_valid(broken)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file():
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "ELASTIC_PASSWORD": "test-password"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "ELASTIC_PASSWORD"},
        timeout=60,
    )
    assert missing.returncode != 0 and "ELASTIC_PASSWORD" in missing.stderr


def test_elasticsearch_is_pinned_single_node_with_security_and_a_password_from_the_environment(compose):
    es = compose["services"]["elasticsearch"]
    assert ES_IMAGE.match(es["image"]), es["image"]
    settings = env(es)
    assert settings["discovery.type"] == "single-node"
    assert settings["xpack.security.enabled"] == "true"
    assert settings["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")  # required, never a default
    assert "$$ELASTIC_PASSWORD" in " ".join(es["healthcheck"]["test"])
    assert any(volume.endswith(":/usr/share/elasticsearch/data") for volume in es["volumes"])


@pytest.mark.parametrize("name", ["search", "reindex"])
def test_the_service_and_the_reindex_reach_elasticsearch_once_it_is_healthy(compose, name):
    service = compose["services"][name]
    assert service["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    settings = env(service)
    assert settings["SEARCH_RERANK_LEXICAL__URL"] == "http://elasticsearch:9200"
    assert settings["SEARCH_RERANK_LEXICAL__BACKEND"] == "elasticsearch"
    assert settings["SEARCH_RERANK_LEXICAL__PASSWORD"] == env(compose["services"]["elasticsearch"])["ELASTIC_PASSWORD"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts["/data/indexes"] == "indexes" and mounts["/models"] == "models"
    assert settings["SEARCH_RERANK_INDEX_DIR"].startswith("/data/indexes/")
    assert {"indexes", "models", "esdata"} <= set(compose["volumes"])


def test_the_service_and_the_reindex_take_one_dense_backend_defaulting_to_faiss(compose):
    search, reindex = (env(compose["services"][name]) for name in ("search", "reindex"))
    assert search["SEARCH_RERANK_DENSE__BACKEND"] == reindex["SEARCH_RERANK_DENSE__BACKEND"]
    assert search["SEARCH_RERANK_DENSE__BACKEND"] == "${SEARCH_RERANK_DENSE__BACKEND:-faiss}"


def test_reindex_is_a_one_shot_of_the_same_image(compose):
    search, reindex = compose["services"]["search"], compose["services"]["reindex"]
    assert reindex["image"] == search["image"] and reindex["build"] == search["build"]
    assert reindex["entrypoint"] == ["search-rerank", "reindex"]
    assert "--catalog" in reindex["command"] and reindex["profiles"] == ["tools"]  # not started by `up`
    assert "restart" not in reindex
    assert search["command"][0] == "serve" and "/ready" in " ".join(search["healthcheck"]["test"])


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_pins_the_base_installs_cpu_torch_first_and_runs_as_a_user():
    steps = dockerfile()
    instructions = [name for name, _ in steps]
    base = dict(steps)["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base
    runs = [args for name, args in steps if name == "RUN"]
    torch_step = next(i for i, args in enumerate(runs) if "torch==" in args)
    package_step = next(i for i, args in enumerate(runs) if re.search(r"pip install \.(\s|$)", args))
    assert torch_step < package_step and "TORCH_INDEX_URL" in runs[torch_step]
    assert {"TORCH_VERSION", "TORCH_INDEX_URL"} <= {args.split("=")[0] for name, args in steps if name == "ARG"}
    user = dict(steps)["USER"]
    assert user not in ("root", "0") and instructions.index("USER") < instructions.index("ENTRYPOINT")
    assert "/health" in dict(steps)["HEALTHCHECK"]
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["search-rerank"] and json.loads(dict(steps)["CMD"]) == ["serve"]


def test_the_image_serves_what_compose_mounts():
    """The Dockerfile's defaults and the compose volumes name the same places."""
    env_lines = " ".join(args for name, args in dockerfile() if name == "ENV")
    defaults = dict(item.split("=", 1) for item in shlex.split(env_lines) if "=" in item)
    assert defaults["SEARCH_RERANK_INDEX_DIR"].startswith("/data/indexes/")
    assert defaults["SEARCH_RERANK_SERVICE__HOST"] == "0.0.0.0" and defaults["HF_HOME"].startswith("/models/")


NGINX_CONF = REPO / "docker" / "nginx.conf"
NGINX_IMAGE = re.compile(r"^nginx:1\.\d+(\.\d+)?-alpine$")
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def nginx_directives() -> dict[str, list[str]]:
    """Each simple directive of docker/nginx.conf with its arguments (the file sets each one once)."""
    text = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text(encoding="utf-8"))
    directives = {}
    for statement in re.split(r"[;{}]", text):
        words = shlex.split(statement)
        if words:
            directives[words[0]] = words[1:]
    return directives


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * SIZE_UNITS[unit.lower()]


def test_nginx_is_pinned_and_is_the_only_way_in_to_the_service(compose):
    nginx, search = compose["services"]["nginx"], compose["services"]["search"]
    assert NGINX_IMAGE.match(nginx["image"]), nginx["image"]
    assert "ports" not in search and search["expose"] == ["8000"]
    assert nginx["ports"] == ["8000:8080"] and nginx_directives()["listen"] == ["8080"]
    assert nginx["depends_on"]["search"]["condition"] == "service_healthy"
    source, target = nginx["volumes"][0].split(":")[:2]
    assert (REPO / source).resolve() == NGINX_CONF and target == "/etc/nginx/nginx.conf"


def test_nginx_passes_to_the_service_by_its_compose_name_and_port(compose):
    upstream = re.search(r"upstream\s+(\w+)\s*{[^}]*?\bserver\s+([^;\s]+);", NGINX_CONF.read_text(encoding="utf-8"))
    assert upstream is not None
    assert nginx_directives()["proxy_pass"] == [f"http://{upstream[1]}"]
    assert upstream[2] == f"search:{compose['services']['search']['expose'][0]}"


def test_nginx_reads_whole_requests_within_bounded_times():
    directives = nginx_directives()
    assert directives["proxy_request_buffering"] == ["on"]
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        assert re.fullmatch(r"\d+s", directives[name][0]) and int(directives[name][0][:-1]) <= 60, name
    for name in ("proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        assert re.fullmatch(r"\d+s", directives[name][0]), name
    assert int(directives["keepalive_requests"][0]) > 0


def test_nginx_body_limit_is_the_services():
    from search_rerank.core.settings import ServiceSettings

    assert nginx_size(nginx_directives()["client_max_body_size"][0]) == ServiceSettings().max_body_bytes


def test_nginx_passes_the_request_id_on():
    text = NGINX_CONF.read_text(encoding="utf-8")
    assert re.search(r"proxy_set_header\s+X-Request-Id\s+\$\w+;", text)
    assert "$http_x_request_id" in text  # the client's own id is kept


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)")
def test_nginx_accepts_the_config(tmp_path):
    """``nginx -t``, with the upstream's compose name (no compose DNS here) pointed at loopback."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.read_text(encoding="utf-8").replace("server search:", "server 127.0.0.1:"))
    done = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


MONITORING_IMAGES = {"prometheus": r"^prom/prometheus:v\d+\.\d+\.\d+$", "grafana": r"^grafana/grafana:\d+\.\d+\.\d+$"}


@pytest.mark.parametrize("name", sorted(MONITORING_IMAGES))
def test_monitoring_services_are_pinned_opt_in_and_bound_to_localhost(compose, name):
    service = compose["services"][name]
    assert re.match(MONITORING_IMAGES[name], service["image"]), service["image"]
    assert service["profiles"] == ["monitoring"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])


def _mounted(service: dict, target: str) -> Path:
    source = next(v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target)
    return REPO / source


def test_prometheus_scrapes_the_search_services_metrics(compose):
    config = yaml.safe_load(_mounted(compose["services"]["prometheus"], "/etc/prometheus/prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    port = compose["services"]["search"]["expose"][0]
    assert job["static_configs"][0]["targets"] == [f"search:{port}"]


def test_the_grafana_dashboard_queries_only_metrics_the_service_exports(compose):
    from prometheus_client import REGISTRY

    from search_rerank.serving import metrics  # noqa: F401  (registers the service's metrics)

    grafana = compose["services"]["grafana"]
    provider = yaml.safe_load(
        (_mounted(grafana, "/etc/grafana/provisioning") / "dashboards" / "dashboards.yml").read_text()
    )
    dashboards = _mounted(grafana, provider["providers"][0]["options"]["path"])
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {f.name + end for f in REGISTRY.collect() for end in suffixes.get(f.type, ())}
    queried = set()
    for path in dashboards.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                queried |= set(re.findall(r"search_rerank_[a-z0-9_]+", target["expr"]))
    assert queried and queried <= exported, sorted(queried - exported)
