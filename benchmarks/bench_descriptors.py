"""Benchmark ``hht_descriptors`` and ``envelope_descriptors``: matrices per second on one CPU core, against the
memory-read limit.

Usage::

    python benchmarks/bench_descriptors.py [--n 2048] [--batch 64] [--repeats 7]

The matrices are random non-negative float32 (256, 256) spectra with a fixed seed (the cost
does not depend on their content). The process is pinned to one core and the BLAS/OpenMP pools
to one thread. Each function is called on consecutive batches of ``--batch`` matrices;
each repeat times a full sweep over the ``--n`` matrices and the best repeat is reported (the
median too, for the run-to-run spread).

The memory-read limit is the rate at which one core reads the same matrices in ``np.sum``, a
single streaming pass: no routine that must look at every cell can beat it. The descriptors
make three passes (the minimum for validation, and two products: the chunk sums and the
column sums), so a third of that limit is the most to expect; the envelope's make two (validation
and the column sums), half of it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

# One core: the thread pools must be sized before numpy loads.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from bench_hht import pin_to_one_core  # noqa: E402  (this folder is on sys.path when run as a script)

from semg_hht.model.descriptors import DESCRIPTOR_NAMES, hht_descriptors  # noqa: E402
from semg_hht.model.envelope import ENVELOPE_NAMES, envelope_descriptors  # noqa: E402

TARGET_PER_SECOND = 2000.0


def limit_blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "BLAS threads from OMP_NUM_THREADS/OPENBLAS_NUM_THREADS=1 (threadpoolctl not installed)"
    threadpool_limits(1)
    return "BLAS threads limited to 1 (threadpoolctl)"


def sweep_seconds(
    function: Callable[[np.ndarray], object], matrices: np.ndarray, batch: int, repeats: int
) -> list[float]:
    """Wall seconds of each of ``repeats`` sweeps of ``function`` over ``matrices`` in batches."""
    batches = [matrices[start : start + batch] for start in range(0, len(matrices), batch)]
    function(batches[0])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in batches:
            function(chunk)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="matrices per sweep")
    parser.add_argument("--batch", type=int, default=64, help="matrices per hht_descriptors call")
    parser.add_argument("--repeats", type=int, default=7, help="timed sweeps (best and median reported)")
    args = parser.parse_args()
    if args.n < 1 or args.batch < 1 or args.repeats < 1:
        parser.error("--n, --batch and --repeats must be positive")

    print(f"{pin_to_one_core()}; {limit_blas_threads()}; numpy {np.__version__}")
    matrices = np.random.default_rng(0).random((args.n, 256, 256), dtype=np.float32)
    bytes_per_matrix = matrices[0].nbytes

    sum_times = sweep_seconds(np.sum, matrices, args.batch, args.repeats)
    read_limit = args.n / min(sum_times)
    bandwidth = read_limit * bytes_per_matrix / 1e9
    rows = [
        (
            "matrices per sweep x batch",
            f"{args.n} x {args.batch} ({len(DESCRIPTOR_NAMES)} + {len(ENVELOPE_NAMES)} descriptors each)",
        ),
        ("np.sum read bandwidth", f"{bandwidth:.1f} GB/s = {read_limit:,.0f} matrices/s (one pass)"),
    ]
    for name, function, passes in (
        ("hht_descriptors", hht_descriptors, 3),
        ("envelope_descriptors", envelope_descriptors, 2),
    ):
        times = sweep_seconds(function, matrices, args.batch, args.repeats)
        best_rate, median_rate = args.n / min(times), args.n / float(np.median(times))
        rows += [
            (f"{name}, best", f"{best_rate:,.0f} matrices/s ({1e6 / best_rate:.0f} us per matrix)"),
            (f"{name}, median", f"{median_rate:,.0f} matrices/s"),
            (
                f"{name}, target",
                f"{TARGET_PER_SECOND:,.0f} matrices/s: {best_rate / TARGET_PER_SECOND:.1f}x the target",
            ),
            (
                f"{name}, fraction of the read limit",
                f"{best_rate / read_limit:.2f} ({passes} passes: {1 / passes:.2f} at best)",
            ),
        ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
