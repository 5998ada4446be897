"""Benchmark the Hilbert-Huang transform: spectrum matrices per second on one CPU core.

Usage::

    python benchmarks/bench_hht.py [--repeats 20] [--methods emd,eemd,ceemdan]
                                   [--ensembles 30] [--ensemble-repeats 2] [--compare-pyemd]

Segments are white noise band-limited to 20-450 Hz (4th-order Butterworth, zero phase)
under a Gaussian burst envelope, like a surface-EMG contraction, with a fixed seed; each
timed call gets a different segment. The process is pinned to one core and the BLAS/OpenMP
pools to one thread. The target for the default method is 40 two-second segments per second.

``--compare-pyemd`` also times ``EMD-signal`` (import name ``PyEMD``, not a dependency of this
project) on the same segments, and runs both decompositions on awkward signals to compare
their robustness.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial

# One core: the thread pools must be sized before numpy loads.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from scipy.signal import butter, sosfiltfilt  # noqa: E402

from semg_hht.defaults import DEFAULT_ENSEMBLES  # noqa: E402
from semg_hht.hht.checks import HHTInputError  # noqa: E402
from semg_hht.hht.decomposition import emd  # noqa: E402
from semg_hht.hht.spectrum import hilbert_spectrum  # noqa: E402

RATES_HZ = (1000.0, 2000.0)
DURATIONS_S = (1.0, 2.0, 10.0)
TARGET_PER_SECOND = 40.0
METHODS = ("emd", "eemd", "ceemdan")


def semg_like(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Band-limited noise (20-450 Hz) under a burst envelope, in millivolts."""
    sos = butter(4, [20.0, 450.0], btype="bandpass", fs=fs, output="sos")
    t = np.arange(n) / n
    envelope = 0.1 + np.exp(-0.5 * ((t - rng.uniform(0.3, 0.7)) / 0.15) ** 2)
    return sosfiltfilt(sos, rng.standard_normal(n)) * envelope


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def per_call_seconds(function: Callable[[np.ndarray], object], segments: list[np.ndarray]) -> float:
    function(segments[0])  # warm caches and lazy imports
    start = time.perf_counter()
    for segment in segments:
        function(segment)
    return (time.perf_counter() - start) / len(segments)


def pyemd_decomposer() -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        from PyEMD import EMD
    except ImportError:
        return None
    decomposer = EMD()

    def decompose(x: np.ndarray) -> np.ndarray:
        decomposer.emd(x)
        return decomposer.get_imfs_and_residue()[0]

    return decompose


def timing_table(args: argparse.Namespace, pyemd: Callable[[np.ndarray], np.ndarray] | None) -> None:
    rng = np.random.default_rng(args.seed)
    rows = []
    for fs in RATES_HZ:
        for seconds in DURATIONS_S:
            n = int(fs * seconds)
            segments = [semg_like(n, fs, rng) for _ in range(args.repeats)]
            cases: list[tuple[str, Callable[[np.ndarray], object], int]] = []
            for method in args.methods:
                repeats = args.repeats if method == "emd" else args.ensemble_repeats
                spectrum = partial(hilbert_spectrum, fs=fs, method=method, ensembles=args.ensembles, seed=0)
                label = method if method == "emd" else f"{method} x{args.ensembles}"
                cases.append((f"{label} (matrix)", spectrum, repeats))
            if pyemd is not None:
                cases.append(("emd (decomposition only)", emd, args.repeats))
                cases.append(("PyEMD EMD (decomposition only)", pyemd, max(1, args.repeats // 4)))
            for label, function, repeats in cases:
                seconds_per_call = per_call_seconds(function, segments[:repeats])
                rows.append((label, fs, seconds, n, seconds_per_call))
    print(f"{'what':34s} {'fs Hz':>6s} {'len s':>6s} {'samples':>8s} {'ms/call':>9s} {'per s':>8s}")
    for label, fs, seconds, n, seconds_per_call in rows:
        print(f"{label:34s} {fs:6.0f} {seconds:6.0f} {n:8d} {1e3 * seconds_per_call:9.2f} {1 / seconds_per_call:8.1f}")
    default = [1 / s for label, _, seconds, _, s in rows if label == "emd (matrix)" and seconds == 2.0]
    if default:
        verdict = "meets" if min(default) >= TARGET_PER_SECOND else "MISSES"
        worst = min(default)
        print(f"\ndefault method, 2 s segments: {worst:.1f}/s at worst; {verdict} the target {TARGET_PER_SECOND:g}/s")


def awkward_signals(rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(2000) / 1000.0
    sine = np.sin(2 * np.pi * 100 * t)
    burst = semg_like(2000, 1000.0, rng)
    return {
        "pure sine 100 Hz": sine,
        "clipped sine (rails)": np.clip(3 * np.sin(2 * np.pi * 60 * t), -1, 1),
        "clipped sEMG (ADC rails)": np.clip(burst, -0.5 * burst.max(), 0.5 * burst.max()),
        "integer ADC counts": np.round(200 * burst).astype(np.int64) + 32768,
        "in volts (x1e-4)": 1e-4 * burst,
        "256 samples": burst[:256],
        "64 samples": burst[:64],
        "few extrema (1.5 cycles)": np.sin(2 * np.pi * 0.75 * t) + t,
        "monotonic ramp": t,
        "constant": np.full(2000, 1.5),
    }


def describe(function: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> str:
    try:
        imfs = np.asarray(function(x))
    except Exception as error:  # report every failure, whatever its type
        return f"raises {type(error).__name__}: {str(error)[:60]}"
    if imfs.size and not np.isfinite(imfs).all():
        return f"{len(imfs)} IMFs with NaN/inf"
    energy = float(np.sum(imfs**2)) / max(float(np.sum((x - x.mean()) ** 2)), np.finfo(float).tiny)
    return f"{len(imfs)} IMFs, IMF energy / signal energy {energy:.2f}"


def robustness_table(pyemd: Callable[[np.ndarray], np.ndarray], seed: int) -> None:
    print(f"\n{'signal':26s} | {'this module: emd()':52s} | PyEMD EMD")
    for name, x in awkward_signals(np.random.default_rng(seed)).items():
        ours = describe(lambda s: emd(s)[0], x)
        theirs = describe(pyemd, x.astype(np.float64))
        print(f"{name:26s} | {ours:52s} | {theirs}")
        try:
            hilbert_spectrum(x, 1000.0)
        except HHTInputError as error:
            print(f"{'':26s} | hilbert_spectrum: HHTInputError: {error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per case for plain EMD (default 20)")
    parser.add_argument(
        "--methods",
        type=lambda text: [m.strip() for m in text.split(",") if m.strip()],
        default=list(METHODS),
        help="comma-separated methods out of emd,eemd,ceemdan (default all)",
    )
    parser.add_argument(
        "--ensembles", type=int, default=DEFAULT_ENSEMBLES, help="noise realisations (default %(default)s)"
    )
    parser.add_argument("--ensemble-repeats", type=int, default=2, help="timed calls per ensemble case (default 2)")
    parser.add_argument("--compare-pyemd", action="store_true", help="also measure PyEMD (EMD-signal) if importable")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test signals (default 0)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown or args.repeats < 1 or args.ensemble_repeats < 1 or args.ensembles < 1:
        parser.error(f"unknown method(s) {unknown}" if unknown else "counts must be at least 1")

    print(f"{pin_to_one_core()}; numpy {np.__version__}")
    pyemd = None
    if args.compare_pyemd:
        pyemd = pyemd_decomposer()
        if pyemd is None:
            print("PyEMD is not importable (pip install EMD-signal); comparing nothing")
        else:
            from importlib.metadata import version

            print(f"comparing with EMD-signal {version('EMD-signal')} (PyEMD.EMD with its default settings)")
    timing_table(args, pyemd)
    if pyemd is not None:
        robustness_table(pyemd, args.seed)


if __name__ == "__main__":
    main()
