"""What a spec's fields cannot show on their own: that every model can be built with its options
for the data set, and that a batch fits in the training split. Both are found otherwise only
when the first trial starts, and then in every trial through its retries.

Run once where a spec is loaded (validate_spec), not in the schema's validators: the searcher
validates the spec again inside the driver, and need not build every model a second time.
"""

from __future__ import annotations

from trainers.catalogue import held_out
from trainers.errors import ConfigError

from .arm import Arm
from .schema import SweepSpec


def problems(spec: SweepSpec) -> list[str]:
    """One `field.path: message` line per problem; empty for a spec that can start."""
    return [*filter(None, (_unbuildable(spec, model) for model in spec.models)), *_training_split(spec)]


def _unbuildable(spec: SweepSpec, model: str) -> str | None:
    """Why `model` cannot be built with `train.model_options`, or None. On the meta device the
    network's tensors have shapes and no memory, so this costs milliseconds even for a large
    model; ImageNet weights are never read (they change no shape)."""
    # torch (about 1.5 s) only here, where a model is built: a saved spec, read by `sweep status`
    # or the report, is never built again (loading.py, read_saved_spec)
    import torch

    from trainers.build import build_model

    arms = [arm for arm in spec.arms() if arm.model == model]
    cfg = spec.corner_config(*arms[0], "low")
    try:
        with torch.device("meta"):
            build_model(cfg, cfg.data_shape().num_classes, pretrained=False)
    except ConfigError as err:
        return f"train.{err} ({_names(arms)})"
    except (TypeError, ValueError, RuntimeError) as err:  # an option of the wrong type or shape
        return f"train.model_options: model {model!r} cannot be built with {cfg.model_options}: {err} ({_names(arms)})"
    return None


def _names(arms: list[Arm]) -> str:
    return ("arm " if len(arms) == 1 else "arms ") + ", ".join(map(str, arms))


def _training_split(spec: SweepSpec) -> list[str]:
    """The batch against the images left for training once `val_fraction` of the data set's
    training images are held out (the same count as trainers/data/splits.py holds out)."""
    cfg = spec.corner_config(*spec.arms()[0], "low")
    images = cfg.data_shape().train_images
    kept = images - held_out(images, cfg.val_fraction)
    if kept < 1:
        return [
            f"train.val_fraction: {cfg.val_fraction} holds out all {images} training images of {spec.dataset}; leave one at least"
        ]
    if cfg.batch_size > kept:
        split = f"{images} training images of {spec.dataset}, less {images - kept} held out by val_fraction {cfg.val_fraction}"
        return [f"train.batch_size: must be at most {kept}, the training split ({split}) (got {cfg.batch_size})"]
    return []
