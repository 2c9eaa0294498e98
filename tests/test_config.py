"""TrainConfig: the paper's defaults, and every impossible value rejected with its field named."""

import pytest
from pydantic import ValidationError

from trainers.config import TrainConfig, describe_errors


def test_defaults_are_the_papers_settings():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov, cfg.rho) == (0.1, 0.9, 5e-4, False, 0.05)
    assert (cfg.batch_size, cfg.lr_schedule, cfg.augment) == (100, "cosine", False)


def test_every_field_documents_itself():
    for name, field in TrainConfig.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", 0.0),
        ("lr", -0.1),
        ("lr", float("nan")),
        ("rho", -0.01),
        ("eta", -1.0),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("batch_size", 0),
        ("epochs", 0),
        ("optimizer", "adam"),
        ("dataset", "imagenet"),
        ("lr_schedule", "step"),
        ("device", "tpu"),
        ("device", "cpu:1"),
    ],
)
def test_impossible_values_are_rejected_naming_field_and_value(field, value):
    with pytest.raises(ValidationError) as err:
        TrainConfig(**{field: value})
    (line,) = describe_errors(err.value)
    assert line.startswith(f"{field}: ")
    assert repr(value) in line


def test_unknown_rule_message_lists_the_known_rules():
    with pytest.raises(ValidationError) as err:
        TrainConfig(optimizer="adam")
    assert "sgd, ugd, sam, asam, sam_gns" in describe_errors(err.value)[0]


def test_unknown_key_is_rejected():
    with pytest.raises(ValidationError) as err:
        TrainConfig(learning_rate=0.1)
    assert describe_errors(err.value)[0].startswith("learning_rate: Extra inputs are not permitted")


def test_nesterov_without_momentum_is_rejected():
    with pytest.raises(ValidationError) as err:
        TrainConfig(nesterov=True, momentum=0.0)
    assert describe_errors(err.value) == ["nesterov: needs momentum > 0 (got momentum 0.0)"]


def test_assignment_is_validated_too():
    cfg = TrainConfig()
    with pytest.raises(ValidationError):
        cfg.lr = -1.0


def test_all_problems_are_reported_at_once():
    with pytest.raises(ValidationError) as err:
        TrainConfig(lr=0, rho=-1, batch_size=0)
    assert [line.split(":")[0] for line in describe_errors(err.value)] == ["lr", "rho", "batch_size"]
