"""Bad input never starts anything: a corpus of broken specs, and specs mutated at random, each
refused with one clean line per problem naming the field path (exit status 2), never a traceback."""

import copy
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep import cli
from sweep.errors import UserError
from sweep.spec import validate_spec

GOOD = {
    "name": "good",
    "dataset": "digits",
    "models": ["small_cnn"],
    "optimizers": ["sgd", "sam_gns"],
    "train": {"epochs": 2, "batch_size": 32},
    "search": {
        "method": "optuna",
        "trials_per_arm": 2,
        "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}, "rho": {"low": 0.01, "high": 0.5}},
    },
    "seeds": [0, 1],
    "resources": {"cpus": 1, "gpu": 0.5},
    "retries": 1,
}


def changed(path: str, value):
    spec = copy.deepcopy(GOOD)
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return spec


DELETE = object()
BIG_GRID = {**GOOD, "seeds": list(range(100)), "search": {"method": "grid", "space": {"lr": {"choices": list(range(1, 102))}}}}
CORPUS = [  # (spec, the field path the first problem names)
    (changed("name", DELETE), "name"),
    (changed("name", ""), "name"),
    (changed("name", "two words"), "name"),
    (changed("name", 42), "name"),
    (changed("dataset", "imagenet"), "train.dataset"),
    (changed("dataset", DELETE), "dataset"),
    (changed("models", []), "models"),
    (changed("models", ["resnet19"]), "models"),
    (changed("models", "small_cnn"), "models"),
    (changed("optimizers", ["adam"]), "optimizers"),
    (changed("optimizers", []), "optimizers"),
    (changed("train.epochs", 0), "train.epochs"),
    (changed("train.batch_size", -1), "train.batch_size"),
    (changed("train.lr", 0.1), "train.lr"),  # also searched
    (changed("train.momentum", 1.5), "train.momentum"),
    (changed("train.colour", "red"), "train.colour"),
    (changed("train.optimizer", "sgd"), "train.optimizer"),
    (changed("train.val_fraction", 1.0), "train.val_fraction"),
    (changed("search.method", "bayes"), "search.method"),
    (changed("search.trials_per_arm", 0), "search.trials_per_arm"),
    (changed("search.trials_per_arm", DELETE), "search.trials_per_arm"),
    (changed("search.space.lr", {"low": 0, "high": 1, "log": True}), "search.space.lr.low"),
    (changed("search.space.lr", {"low": 1, "high": 0.1}), "search.space.lr.high"),
    (changed("search.space.lr", {"low": 0.1, "high": 0.1}), "search.space.lr.high"),
    (changed("search.space.lr", {"low": -1, "high": 1}), "search.space.lr"),  # lr corner <= 0
    (changed("search.space.lr", {"choices": []}), "search.space.lr.choices"),
    (changed("search.space.lr", "fast"), "search.space.lr"),
    (changed("search.space.rho", {"low": -0.1, "high": 0.1}), "search.space.rho"),
    (changed("search.space.batch_size", 64), "search.space.batch_size"),
    (changed("search.overrides", {"adamw": {"rho": 0.1}}), "search.overrides.adamw"),
    (changed("search.space.lr", {"low": 0.01, "high": 1.0, "steps": 3}), "search.space.lr.steps"),
    (changed("seeds", []), "seeds"),
    (changed("seeds", [-1]), "train.seed"),
    (changed("resources.gpu", 1.5), "resources.gpu"),
    (changed("resources.gpu", -0.5), "resources.gpu"),
    (changed("resources.cpus", 0), "resources.cpus"),
    (changed("resources.gpu", "half"), "resources.gpu"),
    (changed("resources.models", {"vgg16": {"gpu": 1}}), "resources.models.vgg16"),
    (changed("resources.models", {"small_cnn": {"min_gpu_memory_gb": -8}}), "resources.models.small_cnn.min_gpu_memory_gb"),
    (changed("resources.models", {"small_cnn": {"gpu": 2}}), "resources.models.small_cnn.gpu"),
    (changed("resources.models", {"small_cnn": {"cards": []}}), "resources.models.small_cnn.cards"),
    (changed("resources.models", {"small_cnn": {"vram": 8}}), "resources.models.small_cnn.vram"),
    (changed("resources", {"gpu": 0, "cards": ["TITAN RTX"]}), "resources.gpu"),
    (changed("checkpoints.storage", "/mnt/bucket"), "checkpoints.storage"),
    (changed("checkpoints.endpoint", "minio:9000"), "checkpoints.endpoint"),
    (changed("retries", -1), "retries"),
    (changed("max_concurrent", -2), "max_concurrent"),
    (changed("confirm_seeds", -1), "confirm_seeds"),
    (changed("scheduler", {"grace_period": 0}), "scheduler.grace_period"),
    (changed("scheduler", {"reduction_factor": 1}), "scheduler.reduction_factor"),
    (changed("tracking", {"mlflow_uri": "sqlite:///a.db", "optuna_storage": "sqlite:///a.db"}), "tracking.optuna_storage"),
    (changed("checkpoints.every", 0), "checkpoints.every"),
    (changed("extra_key", True), "extra_key"),
    # arms listed twice
    (changed("models", ["small_cnn", "small_cnn"]), "models"),
    (changed("optimizers", ["sgd", "sam", "sam"]), "optimizers"),
    # counts no real sweep reaches (sweep/spec/limits.py)
    (changed("train.epochs", 10**12), "train.epochs"),
    (changed("search.trials_per_arm", 10**9), "search.trials_per_arm"),
    (changed("confirm_seeds", 10**6), "confirm_seeds"),
    (changed("seeds", list(range(1001))), "seeds"),
    (changed("retries", 101), "retries"),
    (BIG_GRID, "search.space"),
    # what only building the trials shows
    (changed("train.model_options", {"width": -3}), "train.model_options"),
    (changed("train.model_options", {"width": "wide"}), "train.model_options"),
    (changed("train.batch_size", 5000), "train.batch_size"),
    (
        {**GOOD, "dataset": "synthetic", "train": {"batch_size": 1, "val_fraction": 0.9, "synthetic": {"images": 2}}},
        "train.val_fraction",
    ),
]


@pytest.mark.parametrize(("spec", "path"), CORPUS, ids=[f"{i}-{p}" for i, (_, p) in enumerate(CORPUS)])
def test_corpus_of_bad_specs_is_refused_naming_the_field(spec, path, tmp_path, capsys, monkeypatch):
    assert len(CORPUS) >= 30
    file = tmp_path / "spec.yaml"
    file.write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    for command in ("validate", "run"):
        assert cli.main([command, str(file)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines and all(": " in line and "Traceback" not in line for line in lines)
        assert any(line.startswith(f"{path}:") or line.startswith(f"{path}.") for line in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # nothing started, nothing written


# "billion laughs": nine lists of nine references to the one before, 9**9 strings once expanded
LAUGHS = b"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + b"".join(
    b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 9)) for i in range(8)
)
DEEP_MAPPING = b"".join(b" " * i + b"k:\n" for i in range(100)) + b" " * 100 + b"x: 1\n"


@pytest.mark.timeout(20)  # the alias bomb and the deep document are refused at once, not expanded
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "expected a mapping of spec fields"),
        (b"- just\n- a list\n", "expected a mapping of spec fields"),
        (b"name: [unclosed\n", "not valid YAML"),
        (b"\xff\xfe\x00binary", "not UTF-8 text"),
        (b"name: x\n" + b"# padding\n" * 200_000, "larger than"),
        (b"a: " + b"[" * 100_000, ":1: mappings and lists nested more than 50 deep"),
        (DEEP_MAPPING, ":51: mappings and lists nested more than 50 deep"),
        (LAUGHS, ":1: anchors and aliases (&name, *name) are not accepted"),
        (b"name: x\nseeds: [" + b"0, " * 300_000 + b"0]\n", ":2: more than 20000 keys and values"),
        (b"name: a\ndataset: digits\nname: b\n", ":3: key `name` given twice (first on line 1)"),
        (b"search:\n  space:\n    lr: 0.1\n    lr: 0.2\n", ":4: key `lr` given twice (first on line 3)"),
        (b"name: good\nmodels: [a, b\noptimizers: [sgd]\n", ":3:11: not valid YAML: expected ',' or ']'"),
        (b"name: good\n\tdataset: digits\n", ":2:1: not valid YAML"),
        (b"name: good\nretries: " + b"9" * 5000 + b"\n", ":2: 999"),  # longer than Python reads as an int
        (b"name: 2024-13-45\n", ":1: 2024-13-45: month must be in 1..12"),
    ],
)
def test_unreadable_spec_files_get_one_line(tmp_path, capsys, monkeypatch, content, message):
    file = tmp_path / "spec.yaml"
    file.write_bytes(content)
    monkeypatch.chdir(tmp_path)
    for command in ("validate", "run"):
        assert cli.main([command, str(file)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(str(file)) and message in line and "Traceback" not in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # nothing started, nothing written


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (changed("models", ["small_cnn", "small_cnn"]), "models: small_cnn listed twice"),
        (changed("optimizers", ["sgd", "sam", "sam"]), "optimizers: sam listed twice"),
        (changed("train.epochs", 10**12), "train.epochs: must be <= 10000 in a sweep (got 1000000000000)"),
        (changed("search.trials_per_arm", 10**9), "search.trials_per_arm: Input should be less than or equal to 10000"),
        (changed("confirm_seeds", 10**6), "confirm_seeds: Input should be less than or equal to 1000 (got 1000000)"),
        (changed("seeds", list(range(1001))), "seeds: List should have at most 1000 items"),
        (
            BIG_GRID,
            "search.space: a grid of 10100 trials per arm for sgd (choices x seeds: 101 x 100); at most 10000",
        ),
        (
            changed("train.model_options", {"width": -3}),
            "train.model_options: small_cnn width must be >= 1, got -3 (arms small_cnn/sgd, small_cnn/sam_gns)",
        ),
        (
            changed("train.batch_size", 5000),
            "train.batch_size: must be at most 1294, the training split "
            "(1438 training images of digits, less 144 held out by val_fraction 0.1) (got 5000)",
        ),
    ],
)
def test_new_refusals_say_what_is_accepted(spec, message):
    with pytest.raises(UserError) as err:
        validate_spec(spec)
    assert any(problem.startswith(message) for problem in err.value.problems), err.value.problems


def exit_code(argv) -> int:
    """What the `sweep` command exits with (argparse's own errors raise SystemExit)."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        ["validate"],
        ["list"],
        ["run", "x.yaml", "--set", "=1"],
        ["run", "x.yaml", "--set", "noequals"],
        ["run", "x.yaml", "--set", "search.trials_per_arm=[unclosed"],
        ["run", "x.yaml", "--set", "search.space=&a {lr: *a}"],  # the file's loader: no aliases
        ["run", "x.yaml", "--set", "search.space={lr: 0.1, lr: 0.2}"],
        ["run", "x.yaml", "--set", "train.model_options=" + "[" * 100 + "]" * 100],
        ["run", "x.yaml", "--set", "a." * 60 + "b=1"],
    ],
)
def test_bad_command_lines_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(GOOD))
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() and "Traceback" not in err


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=12),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text("abc", max_size=3), st.integers(), max_size=2),
)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


PATHS = list(_paths(GOOD))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(LEAVES, st.just(DELETE))), min_size=1, max_size=4))
def test_mutated_specs_load_or_fail_cleanly(mutations):
    spec = copy.deepcopy(GOOD)
    for path, value in mutations:
        node = spec
        for part in path[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(part), dict):
                break
            node = node[part]
        else:
            if value is DELETE:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    try:
        validate_spec(spec)
    except UserError as err:
        assert err.problems and all(isinstance(p, str) and ": " in p and "\n" not in p for p in err.problems)
