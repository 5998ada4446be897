"""The train.py workflow, step by step: scan -> features -> split -> (tuning, cross-validation) -> fit (the SVM,
or encoder training then the SVM) -> evaluate -> save -> predict tests -> report.

Each step is a function of the values the earlier ones returned: :mod:`semg_hht.training.labelled_data` (device,
scan, features, split), :mod:`semg_hht.training.model_selection` (classifier, tuning, cross-validation),
:mod:`semg_hht.training.run_record` (what the checkpoints record, and their one save),
:mod:`semg_hht.training.fit` (fitting and the final save), :mod:`semg_hht.training.results` (validation figures,
test predictions, report); :mod:`semg_hht.training.resume` holds every rule of a resumed run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from semg_hht.errors import EXIT_OUT_OF_MEMORY, UsageError, is_out_of_device_memory, out_of_memory_advice
from semg_hht.io.atomic import remove_temporaries
from semg_hht.io.folder_lock import folder_lock
from semg_hht.logs import TO_STDERR
from semg_hht.model.checkpoint import PREVIOUS_DIR
from semg_hht.training.encoder_options import TrainingDataError
from semg_hht.training.fit import fit, save_final
from semg_hht.training.labelled_data import Scan, choose_device, choose_split, encode_files, scan
from semg_hht.training.model_selection import cross_validate, prepare_classifier, tune
from semg_hht.training.options import TrainingOptions
from semg_hht.training.results import (
    RunResults,
    evaluate,
    failures_of,
    predict_tests,
    summarise_skipped,
    write_run_report,
)
from semg_hht.training.resume import load_resume_checkpoint
from semg_hht.training.run_record import RunRecord

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def run_training(options: TrainingOptions) -> int:
    """Run train.py: returns the exit code (0 all files used, 1 some skipped, 3 out of memory).

    The checkpoint folder is locked for the whole run (:mod:`semg_hht.io.folder_lock`),
    so everything in it comes from one run.

    Raises
    ------
    UsageError
        Nothing can be trained, or another run holds the checkpoint folder.
    WriteError
        The checkpoint folder cannot be written (read-only, full, no permission).
    """
    options.validate()
    with folder_lock(options.checkpoint_dir, "train.py"):
        remove_temporaries(Path(options.checkpoint_dir) / PREVIOUS_DIR)
        options.refuse_existing_checkpoints()
        started = time.perf_counter()
        device = choose_device(options)
        scanned = scan(options)
        try:
            results = _train(options, device, scanned, started)
        except TrainingDataError as error:
            raise UsageError(str(error)) from None
        except Exception as error:
            if not is_out_of_device_memory(error):
                raise
            logger.info(out_of_memory_advice(options.batch_size), extra=TO_STDERR)
            return EXIT_OUT_OF_MEMORY
        return summarise_skipped(results.failures)


def _train(options: TrainingOptions, device: torch.device | str, scanned: Scan, started: float) -> RunResults:
    """The steps from the resumed checkpoint (or a new classifier) to the report; returns what they found."""
    resumed = load_resume_checkpoint(options, device) if options.resume else None
    classifier = prepare_classifier(options, device, resumed)
    first_pass = encode_files(options, classifier, scanned)
    timings = {"loading_s": time.perf_counter() - started}
    split = choose_split(options, first_pass.data, resumed)
    tuning, tuning_timings = tune(options, classifier, first_pass.data, split, resumed, device)
    cv, cv_timings = cross_validate(options, first_pass.data, resumed, device)
    record = RunRecord(options, first_pass.data, split, resumed, tuning, cv)
    fit_started = time.perf_counter()
    fitted = fit(record, classifier, first_pass.tests, scanned.folder.test)
    evaluation = evaluate(record, fitted)
    save_final(record, fitted, evaluation.validation)
    fit_seconds = time.perf_counter() - fit_started
    tested = predict_tests(record, fitted, scanned.folder, scanned.source)
    results = RunResults(
        fitted,
        evaluation,
        tested.scores,
        failures_of(record, scanned.folder, first_pass.skipped, tested.errors),
        {
            **timings,
            **tuning_timings,
            **cv_timings,
            **evaluation.timings,
            "training_s": fit_seconds,
            "total_s": time.perf_counter() - started,
        },
    )
    report = write_run_report(record, scanned.folder, results)
    logger.info(f"\nReport saved to: {report}")
    return results
