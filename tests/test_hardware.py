"""The epoch's peak memory (trainers/hardware.py): each epoch's own, on the CPU and on a card."""

import pytest
import torch
from test_train import digits_config

from trainers.hardware import MIB, PeakMemory, rss_peak_mb
from trainers.train import fit


def test_the_rss_peak_is_reset_at_each_epoch():
    meter = PeakMemory(torch.device("cpu"))
    meter.reset()
    big = torch.ones(256 * MIB // 4)  # 256 MiB, touched
    first = meter.read()["peak_rss_mb"]
    del big
    meter.reset()
    second = meter.read()["peak_rss_mb"]
    assert first - second > 200  # the freed tensor's 256 MiB are no longer in the next epoch's peak
    assert second > 0 and rss_peak_mb() == pytest.approx(second, abs=50)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA card")
def test_the_gpu_peak_is_reset_at_each_epoch_and_reported_by_fit():
    device = torch.device("cuda")
    meter = PeakMemory(device)
    meter.reset()
    big = torch.ones(256 * MIB // 4, device=device)
    first = meter.read()["peak_gpu_memory_mb"]
    del big
    meter.reset()
    assert first - meter.read()["peak_gpu_memory_mb"] >= 256
    reports = []
    fit(digits_config(optimizer="sgd", lr=0.05, epochs=2, device="cuda"), lambda metrics, state: reports.append(metrics))
    assert all(m["peak_gpu_memory_mb"] > 0 and m["images_per_s"] > 0 and "peak_rss_mb" not in m for m in reports)
