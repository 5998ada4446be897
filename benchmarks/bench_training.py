#!/usr/bin/env python3
"""Speed of encoder training on this machine (CPU, or CUDA when present), against the machine's limit.

Usage::

    python benchmarks/bench_training.py [--cpu] [--files 256]

Prints:

- the roofline: the best matmul TFLOP/s of the device (float32 on the CPU, float32 and
  bfloat16 on a GPU);
- training-step throughput (forward, backward, AdamW) on random batches in memory, per batch
  size, in float32 and bfloat16 autocast, with and without channels_last on a GPU, as samples/s
  and as a fraction of the roofline (a step costs about 3x the forward pass's FLOP);
- one training epoch and one evaluation pass through the product's code (files read from
  disk) on ``--files`` simulated files, as files/s.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from semg_hht.data.dataset import extract_file_features, scan_data_folder
from semg_hht.data.sample_data import generate_sample_data
from semg_hht.logs import PACKAGE, configure_logging, quieter
from semg_hht.memory import keep_freed_memory
from semg_hht.model.classifier import HHTClassifier
from semg_hht.model.encoder import build_encoder, resolve_device
from semg_hht.training.trainer import (
    EncoderTrainer,
    EncoderTrainingOptions,
    LabelledFiles,
    build_linear_head,
)

# Multiply-adds of the three convolutions per sample, x2 for FLOP; a training step is about 3x.
ENCODER_FLOP = 2 * (1 * 64 * 9 * 128 * 128 + 64 * 128 * 9 * 64 * 64 + 128 * 256 * 9 * 32 * 32)
STEP_FLOP = 3 * ENCODER_FLOP


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_roofline(device: torch.device, dtype: torch.dtype) -> float:
    """Best TFLOP/s of square matrix products on ``device``."""
    size = 8192 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        synchronize(device)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - start) / 1e12)
    return best


def step_rate(device: torch.device, batch_size: int, bf16: bool, channels_last: bool, steps: int) -> float:
    """Samples/s of full training steps on one random batch held on the device."""
    keep_freed_memory()
    encoder, head = build_encoder(0).to(device), build_linear_head(0).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    encoder.to(memory_format=memory_format).train()
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-4)
    inputs = torch.rand(batch_size, 1, 256, 256, device=device).contiguous(memory_format=memory_format)
    targets = torch.arange(batch_size, device=device) % 6

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = head(encoder(inputs))
        loss = F.cross_entropy(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


def epoch_rate(device: torch.device, folder: Path, batch_size: int) -> tuple[float, float]:
    """Files/s of one training epoch and of one evaluation pass, through the product's code.

    Measured after a warm-up epoch, so that start-up costs (CUDA kernels, cuDNN's search) are left out.
    """
    data = scan_data_folder(folder)
    labels = np.array(data.labels)
    classifier = HHTClassifier(features="cnn", model="joint", seed=0, batch_size=batch_size, device=device)
    trainer = EncoderTrainer(
        classifier,
        EncoderTrainingOptions(epochs=2, patience=0),
        LabelledFiles(data.labelled, labels),
        LabelledFiles(data.labelled[:2], labels[:2]),
        progress=False,
    )
    trainer.train_epoch(1)
    synchronize(device)
    start = time.perf_counter()
    trainer.train_epoch(2)
    synchronize(device)
    training = time.perf_counter() - start
    with quieter(PACKAGE, logging.ERROR):
        start = time.perf_counter()
        extract_file_features(classifier, data.labelled, batch_size)
        evaluation = time.perf_counter() - start
    return len(labels) / training, len(labels) / evaluation


def main() -> int:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="measure the CPU even when CUDA is available")
    parser.add_argument("--files", type=int, default=256, help="simulated files for the epoch measurement")
    args = parser.parse_args()
    device = resolve_device(args.cpu)
    on_gpu = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if on_gpu else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    fp32 = matmul_roofline(device, torch.float32)
    bf16 = matmul_roofline(device, torch.bfloat16) if on_gpu else None
    print(f"roofline: float32 matmul {fp32:.2f} TFLOP/s" + (f", bfloat16 {bf16:.1f} TFLOP/s" if bf16 else ""))

    print("\ntraining steps on in-memory batches (forward + backward + AdamW):")
    print(f"{'batch':>6} {'precision':>9} {'layout':>13} {'samples/s':>10} {'TFLOP/s':>8} {'of roofline':>11}")
    batch_sizes = (8, 32, 128, 256) if on_gpu else (8, 32)
    for batch_size in batch_sizes:
        for use_bf16 in (False, True):
            for channels_last in (False, True) if on_gpu else (False,):
                steps = 40 if on_gpu else max(2, 64 // batch_size)
                rate = step_rate(device, batch_size, use_bf16, channels_last, steps)
                flops = rate * STEP_FLOP / 1e12
                limit = bf16 if (use_bf16 and bf16) else fp32
                print(
                    f"{batch_size:>6} {'bf16' if use_bf16 else 'fp32':>9} "
                    f"{'channels_last' if channels_last else 'contiguous':>13} {rate:>10.0f} {flops:>8.2f} "
                    f"{flops / limit:>10.1%}"
                )

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        with quieter(PACKAGE, logging.ERROR):
            generate_sample_data(folder, n_samples=max(2, args.files // 6), n_test=0, seed=0)
        print(f"\none epoch through EncoderTrainer on {args.files} simulated files (read from disk):")
        for batch_size in (8, 64) if on_gpu else (8,):
            train_rate, eval_rate = epoch_rate(device, folder, batch_size)
            print(f"  batch {batch_size}: training {train_rate:.0f} files/s, evaluation pass {eval_rate:.0f} files/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
