"""Placement by card and memory, without Ray: cards as nodes declare them, per-model resources in
the spec, `gpu: auto` sizing and the per-card memory-cap arithmetic."""

import argparse

import pytest
import torch

from sweep.cluster.cards import CARD_LABEL, GIB, MEMORY_LABEL, Card, NodeCards, card_label, node_labels, parse_card
from sweep.cluster.nodes import start_command
from sweep.cluster.placement import CONTEXT_GB, MAX_PER_CARD, allocator_fraction, need_gb, plan
from sweep.errors import UserError
from sweep.spec import validate_spec
from sweep.tuning.trainable import checkpoint_due

# The paper's lab (Section 5): four workstations, four card models.
LAB = [
    NodeCards("n2070", "10.0.0.1", "RTX-2070", 8, 1),
    NodeCards("n2080s", "10.0.0.2", "RTX-2080-SUPER", 8, 1),
    NodeCards("n2080ti", "10.0.0.3", "RTX-2080-Ti", 11, 1),
    NodeCards("ntitan", "10.0.0.4", "TITAN-RTX", 24, 1),
]


def spec(resources, models=("small_cnn",), **train):
    return validate_spec(
        {
            "name": "placed",
            "dataset": "cifar10",
            "models": list(models),
            "optimizers": ["sgd", "sam_gns"],
            "train": {"batch_size": 128, **train},
            "resources": resources,
        }
    )


def test_card_names_become_the_same_label_from_the_driver_and_from_a_flag():
    assert card_label("NVIDIA GeForce RTX 2080 Ti") == card_label("RTX 2080 Ti") == "RTX-2080-Ti"
    assert card_label("NVIDIA TITAN RTX") == "TITAN-RTX"
    assert parse_card("RTX 2080 Ti:11") == Card("RTX 2080 Ti", 11)
    for bad in ("RTX 2080 Ti", "RTX:0", ":11", "RTX:eleven"):
        with pytest.raises(ValueError, match="MODEL:GB"):
            parse_card(bad)


def test_a_node_with_mixed_cards_declares_its_smallest_memory():
    assert node_labels([Card("TITAN RTX", 24)] * 2) == {CARD_LABEL: "TITAN-RTX", MEMORY_LABEL: "24"}
    assert node_labels([Card("TITAN RTX", 24), Card("RTX 2070", 8)]) == {CARD_LABEL: "mixed", MEMORY_LABEL: "8"}
    assert node_labels([]) == {}


def node_args(**given):
    defaults = {
        "card": [],
        "num_gpus": None,
        "num_cpus": None,
        "token_file": None,
        "block": False,
        "port": 6380,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": 8265,
        "head_address": "10.0.0.4:6380",
    }
    return argparse.Namespace(**{**defaults, **given})


def test_ray_start_commands_declare_cards_turn_on_token_auth_and_keep_the_dashboard_local():
    env, command = start_command(node_args(card=["RTX 2080 Ti:11"], num_gpus=2), head=True)
    assert env == {"RAY_AUTH_MODE": "token"}
    assert command[1:4] == ["start", "--head", "--port=6380"]
    assert "--dashboard-host=127.0.0.1" in command and "--num-gpus=2" in command
    assert f"--labels={CARD_LABEL}=RTX-2080-Ti,{MEMORY_LABEL}=11" in command
    env, command = start_command(node_args(num_gpus=0, token_file="/srv/token", block=True), head=False)
    assert env["RAY_AUTH_TOKEN_PATH"] == "/srv/token"
    assert "--address=10.0.0.4:6380" in command and "--block" in command and "--num-gpus=0" in command
    assert not any(part.startswith("--labels") for part in command)  # no card, no label
    with pytest.raises(UserError, match="--num-gpus 3"):
        start_command(node_args(card=["RTX 2070:8", "TITAN RTX:24"], num_gpus=3), head=False)


def test_a_model_restricted_to_large_cards_gets_a_selector_naming_only_them():
    placed = plan(spec({"gpu": 1, "models": {"small_cnn": {"min_gpu_memory_gb": 20}}}), LAB)["small_cnn"]
    assert placed.cards == ("TITAN-RTX",) and placed.gpu == 1
    factory = placed.factory()
    assert factory.bundles == [{"CPU": 1.0, "GPU": 1.0}]
    assert factory._bound.kwargs["bundle_label_selector"] == [{CARD_LABEL: "in(TITAN-RTX)"}]
    by_name = plan(spec({"gpu": 0.5, "cards": ["RTX 2080 Ti", "NVIDIA TITAN RTX"]}), LAB)["small_cnn"]
    assert by_name.cards == ("RTX-2080-Ti", "TITAN-RTX")
    unrestricted = plan(spec({"gpu": 0.25}), LAB)["small_cnn"]
    assert unrestricted.cards == () and "bundle_label_selector" not in unrestricted.factory()._bound.kwargs


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"gpu": 1, "min_gpu_memory_gb": 48}, "resources.min_gpu_memory_gb: no card has 48 GB or more"),
        ({"gpu": 1, "models": {"small_cnn": {"cards": ["A100"]}}}, "resources.models.small_cnn.cards: no node has A100"),
    ],
)
def test_a_placement_no_node_can_satisfy_is_one_clear_error(resources, message):
    with pytest.raises(UserError) as caught:
        plan(spec(resources), LAB)
    (problem,) = caught.value.problems
    assert problem.startswith(message) and "TITAN-RTX 24 GB" in problem


def test_undeclared_cards_cannot_be_restricted_or_sized():
    bare = [NodeCards("n", "10.0.0.9", "", 0, 2)]  # started with plain `ray start`
    with pytest.raises(UserError, match="no node declares its cards"):
        plan(spec({"gpu": "auto"}), bare)
    assert plan(spec({"gpu": 0.5}), bare)["small_cnn"].gpu == 0.5


def test_gpu_auto_gives_a_small_model_a_smaller_share_than_a_large_one():
    sized = spec({"gpu": "auto"}, models=("small_cnn", "resnet18"))
    placements = plan(sized, LAB)
    small, large = placements["small_cnn"], placements["resnet18"]
    assert small.gpu < large.gpu
    assert small.gpu == 1 / MAX_PER_CARD  # a few hundred MB: packing stops at the cap, not memory
    for placed in (small, large):
        # on the smallest card it may use, its trials' needs fit the card
        smallest = min(node.memory_gb for node in LAB if not placed.cards or node.card in placed.cards)
        assert round(1 / placed.gpu) * placed.need_gb <= smallest
        assert placed.need_gb == pytest.approx(need_gb(sized, placed.model))
        assert placed.need_gb > CONTEXT_GB


def test_gpu_auto_leaves_out_cards_too_small_for_one_trial():
    # ViT-B/16 fine-tuning at 224 px, batch 128: more than an 8 GB card holds
    vit = spec({"gpu": "auto"}, models=("tv_vit_b_16",), batch_size=128)
    placed = plan(vit, LAB)["tv_vit_b_16"]
    assert placed.need_gb > 8
    assert set(placed.cards) == {node.card for node in LAB if node.memory_gb >= placed.need_gb}
    assert "RTX-2070" not in placed.cards


def test_without_gpus_auto_trains_on_cpus():
    cpu_only = [NodeCards("n", "127.0.0.1", "", 0, 0)]
    assert plan(spec({"gpu": "auto"}), cpu_only)["small_cnn"].gpu == 0


@pytest.mark.parametrize(
    ("share", "card_gb", "expected"),
    [
        (0.25, 8, (2 - CONTEXT_GB) / 8),  # RTX 2070: 2 GB share, 1.5 GB for tensors
        (0.25, 24, (6 - CONTEXT_GB) / 24),  # TITAN RTX: 6 GB share
        (0.5, 11, (5.5 - CONTEXT_GB) / 11),  # RTX 2080 Ti
        (1.0, 8, 1.0),  # a whole card is not capped
    ],
)
def test_memory_cap_per_card_is_the_share_less_the_cuda_context(share, card_gb, expected):
    assert allocator_fraction(share, card_gb * GIB) == pytest.approx(expected)
    # four trials at 0.25, each with its own context, fit the card together
    if share < 1:
        per_card = round(1 / share)
        assert per_card * (allocator_fraction(share, card_gb * GIB) * card_gb + CONTEXT_GB) == pytest.approx(card_gb)


def test_a_share_smaller_than_the_cuda_context_is_refused():
    with pytest.raises(ValueError, match="leaves nothing"):
        allocator_fraction(0.05, 8 * GIB)  # 0.4 GB < 0.5 GB of context


def test_per_model_resources_must_name_the_spec_s_models():
    with pytest.raises(UserError, match="resources.gpu: cards or min_gpu_memory_gb need a GPU share"):
        spec({"gpu": 0, "cards": ["TITAN RTX"]})
    with pytest.raises(UserError, match=r"resources.models.vgg16: not among the spec's models"):
        spec({"models": {"vgg16": {"gpu": 1}}})
    with pytest.raises(UserError, match=r"resources.models.small_cnn.gpu: must be a fraction of one GPU in \[0, 1\], or auto"):
        spec({"models": {"small_cnn": {"gpu": 1.5}}})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA card (run on a GPU machine)")
def test_a_trial_that_outgrows_its_cap_fails_with_out_of_memory():
    from sweep.tuning.trainable import cap_gpu_memory

    cap_gpu_memory(0.25)
    total = torch.cuda.get_device_properties(0).total_memory
    try:
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.empty(int(total * 0.3), dtype=torch.uint8, device="cuda")
        torch.empty(int(total * 0.1), dtype=torch.uint8, device="cuda")  # within the share: fine
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def test_status_shows_the_fractions_each_card_holds():
    from sweep.cluster.nodes import render_status

    table = render_status(LAB[2:], {"ntitan": [0.25, 0.25, 0.25]}).splitlines()
    assert table[0].split() == ["node", "address", "card", "memory", "GPUs", "in", "use"]
    assert table[1].split() == ["n2080ti", "10.0.0.3", "RTX-2080-Ti", "11", "GB", "1", "0"]
    assert table[2].split()[2:] == ["TITAN-RTX", "24", "GB", "1", "0.75", "(0.25", "+", "0.25", "+", "0.25)"]


def test_ray_s_own_card_name_is_used_only_where_it_names_a_model_and_the_node_declared_none():
    from sweep.cluster.nodes import render_status

    def ray_node(node_id, labels, resources=None):
        return {
            "NodeID": node_id,
            "NodeManagerAddress": "10.0.0.9",
            "Labels": labels,
            "Resources": {"GPU": 1.0, **(resources or {})},
        }

    named = NodeCards.from_ray(ray_node("nnamed", {"ray.io/accelerator-type": "GeForce-RTX-2080-Ti"}))
    letter = NodeCards.from_ray(ray_node("nletter", {}, {"accelerator_type:G": 1.0}))  # older Rays name GeForce cards G
    declared = NodeCards.from_ray(ray_node("ntitan", {CARD_LABEL: "TITAN-RTX", "ray.io/accelerator-type": "TITAN-RTX"}))
    assert (named.card, named.ray_card) == ("", "RTX-2080-Ti")  # placement still sees an undeclared card
    assert letter.ray_card == ""
    rows = {line.split()[0]: line.split()[2:4] for line in render_status([named, letter, declared], {}).splitlines()[1:]}
    assert rows == {"nnamed": ["RTX-2080-Ti", "(Ray)"], "nletter": ["-", "-"], "ntitan": ["TITAN-RTX", "-"]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch.cuda answers first where CUDA works")
def test_cards_come_from_nvidia_ml_py_without_cuda_and_none_without_a_driver():
    import pynvml

    from sweep.cluster.cards import detect_cards

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        assert detect_cards() == []  # no driver on this machine: no cards, no error
        return
    count = pynvml.nvmlDeviceGetCount()
    pynvml.nvmlShutdown()
    assert len(detect_cards()) == count


def test_joining_without_the_cluster_token_starts_nothing(tmp_path, monkeypatch, capsys):
    from sweep.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert main(["cluster", "join", "10.0.0.4:6380", "--num-gpus", "0"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"token: no cluster token at {tmp_path}/.ray/auth_token; copy the head's token file there or pass --token-file"


@pytest.mark.parametrize(
    ("epoch", "status", "every", "every_s", "since_s", "due"),
    [
        (1, "running", 1, 0.0, 0.0, True),  # the default: every epoch
        (1, "running", 2, 0.0, 5.0, False),  # not an epoch of `every`
        (2, "running", 2, 0.0, 0.0, True),
        (2, "running", 2, 10.0, 9.9, False),  # too soon after the last one
        (4, "running", 2, 10.0, 10.0, True),
        (3, "finished", 2, 10.0, 0.1, True),  # the last epoch always
        (1, "diverged", 1, 10.0, 0.1, True),
    ],
)
def test_a_trial_checkpoints_every_n_epochs_at_most_once_per_every_s(epoch, status, every, every_s, since_s, due):
    assert checkpoint_due(epoch, status, every, every_s, since_s) is due
