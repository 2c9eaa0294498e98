"""docker/: the Ray node image and the compose file of each workstation's role, checked
without a Docker engine. The compose file is read as compose reads it (YAML with merge keys, then
`${VAR}` interpolation from docker/.env, here .env.example with dummy secrets); every service's
command then runs for real on this machine: `sweep cluster ... --dry-run`, `mlflow server ...
--help`, and the MLflow server itself on the local PostgreSQL with the shipped auth config."""

import configparser
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from packaging.requirements import Requirement

from helpers.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SECRETS = {"POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "RAY_AUTH_TOKEN"}
ROLES = {"postgres": ["head"], "mlflow": ["head"], "ray-head": ["head"], "ray-worker": ["worker"]}
RAY_NODES = ("ray-head", "ray-worker")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+alt}, ${NAME+alt}
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")

COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (DOCKER / "Dockerfile").read_text(encoding="utf-8")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose reads docker/.env (the example has no quotes to strip)."""
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f".env.example: bad line {line!r}"
            assert key not in pairs, f".env.example: {key} twice"
            pairs[key] = value
    return pairs


EXAMPLE = read_env_file(DOCKER / ".env.example")


def filled_env(**overrides: str) -> dict[str, str]:
    """.env.example with every secret filled in, as a user's docker/.env would be."""
    return {**EXAMPLE, **{name: secrets.token_hex(16) for name in SECRETS}, **overrides}


def strings(node):
    """Every string value of the compose document (compose interpolates values, not keys)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def references(node=COMPOSE) -> list[re.Match]:
    return [match for text in strings(node) for match in REFERENCE.finditer(text.replace("$$", ""))]


class MissingVariable(Exception):
    pass


def interpolate(node, env: dict[str, str]):
    """Compose's interpolation of the forms compose.yaml may use."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def value(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if op == ":?" and not env.get(name):
            raise MissingVariable(f"{name}: {arg}")
        if op is None or op == ":?":
            return env.get(name, "")
        raise AssertionError(f"compose.yaml: ${{{name}{op}{arg}}}: this test reads only ${{VAR}} and ${{VAR:?message}}")

    return REFERENCE.sub(value, node.replace("$$", "\0")).replace("\0", "$")


def service(name: str, env: dict[str, str] | None = None) -> dict:
    return interpolate(COMPOSE["services"][name], env or filled_env())


def sweep_command() -> list[str]:
    beside = Path(sys.executable).parent / "sweep"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "sweep.cli"]


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=ROOT)


def dry_run(name: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    """The service's `sweep cluster ...` command with --dry-run: the `ray start` line it prints."""
    command = service(name, env)["command"]
    assert command[:2] == ["sweep", "cluster"] and "--dry-run" not in command
    process_env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    process_env |= {"HOME": str(tmp_path), **service(name, env)["environment"]}
    done = run([*sweep_command(), *command[1:], "--dry-run"], env=process_env)
    assert done.returncode == 0, f"{shlex.join(command)} --dry-run: exit {done.returncode}\n{done.stderr}"
    assert not (tmp_path / ".ray").exists(), "a dry run must not create a token"
    return shlex.split(done.stdout.strip().splitlines()[-1])


# --- the compose file ------------------------------------------------------------------------


def test_compose_has_the_four_services_each_in_its_role():
    assert {name: svc.get("profiles") for name, svc in COMPOSE["services"].items()} == ROLES
    header = (DOCKER / "compose.yaml").read_text(encoding="utf-8").split("\nname:")[0]
    assert "docker compose --profile head up -d" in header and "docker compose --profile worker up -d" in header
    assert header.index("--profile head up") < header.index("--profile worker up"), "the head starts first"


def test_ray_nodes_use_host_network_gpus_shared_memory_and_the_shared_folder():
    for name in RAY_NODES:
        node = service(name)
        assert node["network_mode"] == "host", name
        assert "ports" not in node, f"{name}: host networking publishes nothing"
        assert re.fullmatch(r"\d+[kmg]?b?", str(node["shm_size"]).lower()), f"{name}: shm_size {node['shm_size']!r}"
        devices = node["deploy"]["resources"]["reservations"]["devices"]
        assert any(
            d["driver"] == "nvidia" and "gpu" in d["capabilities"] and (d.get("count") or d.get("device_ids")) for d in devices
        ), name
        assert f"{EXAMPLE['SWEEP_SHARED_DIR']}:/shared" in node["volumes"], (
            f"{name}: the shared folder at the same path everywhere"
        )
        assert node["environment"]["RAY_AUTH_TOKEN"], name
    assert service("ray-head")["environment"]["SWEEP_CHECKPOINTS"].startswith("/shared/")


def test_nothing_is_published_on_all_interfaces():
    for name in COMPOSE["services"]:
        for entry in service(name).get("ports", []):
            address, _, rest = str(entry).partition(":")
            assert rest.count(":") == 1 and address not in ("", "0.0.0.0", "::"), f"{name}: port {entry!r} needs a host address"
    assert service("postgres")["ports"] == [f"127.0.0.1:{EXAMPLE['POSTGRES_PORT']}:5432"]
    assert EXAMPLE["MLFLOW_BIND_ADDRESS"] not in ("", "0.0.0.0")


@pytest.mark.parametrize("bind", ["MLFLOW_BIND_ADDRESS", "RAY_HEAD_IP"])
def test_the_driver_and_the_browsers_reach_mlflow_through_allowed_hosts_and_origins(bind):
    """Both settings .env.example offers for MLFLOW_BIND_ADDRESS (loopback, or the head's LAN
    address) pass MLflow's Host check (fnmatch patterns, as mlflow.server.security_utils) for the
    driver's URL, and the LAN one is an allowed origin for the UI's own edits."""
    env = filled_env(MLFLOW_BIND_ADDRESS=EXAMPLE[bind])
    driver = urlsplit(service("ray-head", env)["environment"]["MLFLOW_TRACKING_URI"])
    assert driver.port == int(EXAMPLE["MLFLOW_PORT"])
    patterns = EXAMPLE["MLFLOW_ALLOWED_HOSTS"].split(",")
    assert any(fnmatch(driver.netloc, p) if "*" in p else driver.netloc == p for p in patterns), driver.netloc
    if bind == "RAY_HEAD_IP":
        assert f"http://{driver.netloc}" in EXAMPLE["MLFLOW_CORS_ALLOWED_ORIGINS"].split(",")


def test_every_image_is_pinned():
    images = [svc["image"] for svc in COMPOSE["services"].values() if "image" in svc]
    images += re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert len(images) >= 5, images  # postgres, the project image three times, the Dockerfile's base
    for image in images:
        name, _, digest = image.partition("@")
        tag = name.rpartition("/")[2].partition(":")[2]
        assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
        assert tag != "latest", image
        assert digest or re.match(r"\d+(\.\d+)+", tag), f"{image}: pin an exact version tag or a digest"
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)[1]
    assert {svc["image"] for name, svc in COMPOSE["services"].items() if name != "postgres"} == {f"sam-gns-sweep:{version}"}


# --- variables and secrets -------------------------------------------------------------------


def test_every_variable_is_in_env_example_and_every_example_variable_is_used():
    used = {match["name"] for match in references()}
    assert used == set(EXAMPLE), f"only in compose.yaml: {used - set(EXAMPLE)}; only in .env.example: {set(EXAMPLE) - used}"
    raw = "\n".join(strings(COMPOSE)).replace("$$", "")
    assert not re.search(r"\$(?!\{)", raw), "compose.yaml: write ${VAR}, not $VAR"
    for key in EXAMPLE:
        assert re.search(rf"^# .*\n{key}=", (DOCKER / ".env.example").read_text(encoding="utf-8"), re.MULTILINE), (
            f"{key}: no comment"
        )


def test_every_variable_is_required_and_secrets_have_no_value_anywhere():
    for match in references():
        assert match["op"] == ":?" and match["arg"].strip(), f"{match[0]}: write ${{{match['name']}:?message}} (no default)"
    assert set(EXAMPLE) >= SECRETS
    for name in SECRETS:
        assert EXAMPLE[name] == "", f".env.example: {name} must be empty"
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"\$\{(" + "|".join(SECRETS) + r"):?[-+]", text)
    for name in SECRETS:  # a secret never rides on a command line (ps, docker inspect's Args)
        for svc in COMPOSE["services"].values():
            assert name not in " ".join(map(str, svc.get("command", []))), name
            assert name not in str(svc.get("healthcheck", "")), name
    assert "token_hex" in (DOCKER / ".env.example").read_text(encoding="utf-8"), "say how to generate a secret"
    assert (DOCKER / ".gitignore").read_text(encoding="utf-8").split() == [".env"]


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_an_empty_secret(secret):
    with pytest.raises(MissingVariable, match=secret):
        interpolate(COMPOSE, filled_env(**{secret: ""}))


# --- each service's command, run for real ----------------------------------------------------


def test_ray_head_command_starts_a_token_cluster_with_a_loopback_dashboard(tmp_path):
    env = filled_env(RAY_PORT="6390")
    printed = dry_run("ray-head", env, tmp_path)
    assert printed[0] == "RAY_AUTH_MODE=token"
    assert Path(printed[1]).name == "ray" and printed[2:4] == ["start", "--head"]
    for flag in ("--port=6390", "--dashboard-host=127.0.0.1", "--block"):
        assert flag in printed, f"{flag} not in {shlex.join(printed)}"


def test_ray_worker_command_joins_the_head(tmp_path):
    env = filled_env(RAY_HEAD_IP="10.1.2.3", RAY_PORT="6390")
    printed = dry_run("ray-worker", env, tmp_path)
    assert printed[0] == "RAY_AUTH_MODE=token" and printed[2] == "start" and "--head" not in printed
    for flag in ("--address=10.1.2.3:6390", "--block"):
        assert flag in printed, f"{flag} not in {shlex.join(printed)}"


def test_a_sweep_driver_in_the_ray_head_container_accepts_its_environment(tmp_path):
    """Step 3 of compose.yaml's header: the spec it names validates with ray-head's environment
    (MLflow's URL, Optuna's PostgreSQL database, the shared checkpoint folder)."""
    header = (DOCKER / "compose.yaml").read_text(encoding="utf-8").split("\nname:")[0]
    spec = re.search(r"sweep run /opt/sweep/(\S+)", header)[1]
    head_env = service("ray-head")["environment"]
    assert head_env["SWEEP_OPTUNA_STORAGE"].startswith("postgresql://") and head_env["MLFLOW_TRACKING_URI"].startswith("http://")
    done = run([*sweep_command(), "validate", str(ROOT / spec)], env={**os.environ, **head_env})
    assert done.returncode == 0, done.stdout + done.stderr


def mlflow_help() -> str:
    done = run([sys.executable, "-m", "mlflow", "server", "--help"])
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_mlflow_command_is_a_real_hardened_mlflow_server_invocation():
    command = service("mlflow")["command"]
    assert command[:2] == ["mlflow", "server"]
    arguments = command[2:]
    assert arguments[arguments.index("--app-name") + 1] == "basic-auth"
    for flag in (
        "--allowed-hosts",
        "--cors-allowed-origins",
        "--backend-store-uri",
        "--serve-artifacts",
        "--artifacts-destination",
    ):
        assert flag in arguments, flag
    uri = urlsplit(arguments[arguments.index("--backend-store-uri") + 1])
    assert uri.scheme == "postgresql" and uri.password is None, "the password comes from PGPASSWORD, never the URI"
    # click stops at an unknown option before it prints the help: a misspelt flag fails here
    done = run([sys.executable, "-m", "mlflow", "server", *arguments, "--help"])
    assert done.returncode == 0, done.stderr
    text = mlflow_help()
    for flag in {a.partition("=")[0] for a in arguments if a.startswith("--")}:
        assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", text), f"{flag} is not an option of `mlflow server`"
    assert "basic-auth" in re.search(r"--app-name \[([^\]]*)\]", text)[1]


def test_mlflow_reads_the_shipped_auth_config_with_no_password_in_it():
    mlflow = service("mlflow")
    target = mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"]
    assert f"./mlflow-basic-auth.ini:{target}:ro" in mlflow["volumes"]
    config = configparser.ConfigParser()
    config.read(DOCKER / "mlflow-basic-auth.ini")
    section = config["mlflow"]
    assert {"default_permission", "database_uri", "admin_username", "authorization_function"} <= set(section)
    assert "admin_password" not in section, "the admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD"
    assert urlsplit(section["database_uri"]).password is None
    for variable in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert mlflow["environment"][variable], variable
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"


def init_databases() -> list[str]:
    return re.findall(
        r"^\s*CREATE DATABASE (\w+);", (DOCKER / "postgres-init.sql").read_text(encoding="utf-8"), re.MULTILINE | re.IGNORECASE
    )


def test_postgres_init_script_gives_each_store_its_own_database():
    postgres = COMPOSE["services"]["postgres"]
    assert "./postgres-init.sql:/docker-entrypoint-initdb.d/10-databases.sql:ro" in postgres["volumes"]
    assert set(init_databases()) >= {"mlflow", "optuna"}
    config = configparser.ConfigParser()
    config.read(DOCKER / "mlflow-basic-auth.ini")
    command = service("mlflow")["command"]
    stores = {
        "MLflow tracking": command[command.index("--backend-store-uri") + 1],
        "MLflow users": config["mlflow"]["database_uri"],
        "Optuna": service("ray-head")["environment"]["SWEEP_OPTUNA_STORAGE"],
    }
    databases = {store: urlsplit(uri).path.lstrip("/") for store, uri in stores.items()}
    assert len(set(databases.values())) == len(databases), f"each keeps alembic_version: {databases}"
    assert set(databases.values()) <= set(init_databases())
    user = postgres["environment"]["POSTGRES_USER"]
    assert {urlsplit(uri).username for uri in stores.values()} == {user}
    assert f"--username={user}" in postgres["healthcheck"]["test"]


# --- the image -------------------------------------------------------------------------------


def test_image_runs_as_a_user_with_the_pinned_libraries():
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "run as a non-root user"
    pins = [
        Requirement(line)
        for line in (DOCKER / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for pin in pins:
        assert len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "==", f"{pin}: pin an exact version"
    pinned = {pin.name.lower(): pin for pin in pins}
    assert "auth" in pinned["mlflow"].extras, "--app-name basic-auth imports Flask-WTF (mlflow[auth])"
    assert "psycopg" in pinned and "binary" in pinned["psycopg"].extras, "the project's PostgreSQL driver"
    project = re.search(
        r"^dependencies = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
    )[1]
    for requirement in map(Requirement, re.findall(r'^\s*"([^"]+)"', project, re.MULTILINE)):
        if requirement.name.lower() in pinned:
            version = next(iter(pinned[requirement.name.lower()].specifier)).version
            assert requirement.specifier.contains(version), (
                f"{requirement.name}=={version} does not meet pyproject's {requirement}"
            )
    assert "-r docker/requirements.txt" in DOCKERFILE and re.search(r"pip install [^\n]*\s\.\s", DOCKERFILE)


def test_build_context_sends_what_the_dockerfile_copies_and_nothing_else():
    for name in ("mlflow", "ray-head", "ray-worker"):
        build = COMPOSE["services"][name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        assert set(build["args"]) == set(re.findall(r"^ARG (\w+)", DOCKERFILE, re.MULTILINE))
    patterns = [
        line
        for line in (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, then allow"
    allowed = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    for sources in re.findall(r"^COPY\s+(.+)\s+\S+$", DOCKERFILE, re.MULTILINE):
        for source in sources.split():
            assert source in allowed, f"COPY {source}: not in Dockerfile.dockerignore's allow list"
            assert (ROOT / source).exists(), source


# --- the MLflow service, started for real ----------------------------------------------------


def local_postgres() -> bool:
    if not shutil.which("psql"):
        return False
    done = run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc", "select 1"], timeout=20)
    return done.returncode == 0


def psql(*arguments: str) -> subprocess.CompletedProcess:
    # as the postgres image runs its init scripts
    return run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", *arguments],
        timeout=60,
    )


def status(url: str, host: str | None = None, user: str | None = None, password: str | None = None) -> int:
    headers = {"Host": host} if host else {}
    if user:
        headers["Authorization"] = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
    try:
        # generous: the server's first authenticated request (password hashing, a new database
        # connection) took over 10 s on the 2-core machine under load
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.slow
def test_mlflow_service_serves_with_basic_auth_on_postgres(tmp_path):
    """The mlflow service's command, auth config and init script on this machine's PostgreSQL
    (127.0.0.1 instead of the `postgres` service, databases renamed for this test, loopback):
    anonymous requests get 401, the admin 200, a foreign Host header 403, and compose's
    healthcheck passes."""
    # docs/platform.md: the development and CI machines run PostgreSQL at 127.0.0.1:5432
    assert local_postgres(), "no PostgreSQL at 127.0.0.1:5432"
    suffix = secrets.token_hex(4)
    renamed = {name: f"{name}_{suffix}" for name in init_databases()}
    script = re.sub(
        r"(CREATE DATABASE )(\w+)", lambda m: m[1] + renamed[m[2]], (DOCKER / "postgres-init.sql").read_text(encoding="utf-8")
    )
    (tmp_path / "init.sql").write_text(script, encoding="utf-8")

    def local(uri: str) -> str:
        parts = urlsplit(uri)
        assert parts.hostname == "postgres" and parts.port == 5432, uri  # the compose service
        return urlunsplit((parts.scheme, "postgres@127.0.0.1:5432", "/" + renamed[parts.path.lstrip("/")], "", ""))

    port = free_port()
    env = filled_env(MLFLOW_PORT=str(port))
    mlflow = service("mlflow", env)
    arguments = mlflow["command"][2:]
    replace = {"--host": "127.0.0.1", "--artifacts-destination": str(tmp_path / "artifacts")}
    replace["--backend-store-uri"] = local(arguments[arguments.index("--backend-store-uri") + 1])
    for flag, value in replace.items():
        arguments[arguments.index(flag) + 1] = value
    config = configparser.ConfigParser()
    config.read(DOCKER / "mlflow-basic-auth.ini")
    config["mlflow"]["database_uri"] = local(config["mlflow"]["database_uri"])
    with open(tmp_path / "basic_auth.ini", "w", encoding="utf-8") as out:
        config.write(out)
    server_env = {**os.environ, **mlflow["environment"], "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini")}

    created = psql("-f", str(tmp_path / "init.sql"))
    assert created.returncode == 0, created.stderr
    log = open(tmp_path / "server.log", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", *arguments, "--workers", "1"],
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text(encoding="utf-8")[-3000:]
            try:
                if status(f"{base}/health") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 120 s"
            time.sleep(1)

        api = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
        password = mlflow["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"]
        assert status(api) == 401
        assert status(api, user="admin", password="wrong-" + password) == 401
        assert status(api, user="admin", password=password) == 200
        assert status(api, host=f"evil.example:{port}", user="admin", password=password) == 403
        check = mlflow["healthcheck"]["test"]
        assert check[:2] == ["CMD", "python"]
        assert run([sys.executable, *check[2:]], timeout=30).returncode == 0, "compose's healthcheck fails"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        for name in renamed.values():
            psql("-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
