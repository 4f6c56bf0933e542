"""Damaged datasets: never a crash, a hang, a poisoned later read, or wrong values where a
careful reader could tell; every error a SplitDatasetError naming the file or folder at fault.

The campaign itself is ``corruption_fuzz.py`` (also a command line, for long runs and for
replaying one trial). Set CORRUPTION_FUZZ_TRIALS to change the budget here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from corruption_fuzz import (
    FAILURE_OUTCOMES,
    JSON_NAME,
    PHASE_CHECKSUMS,
    PHASE_OURS,
    WRITER_FIXTURE,
    Mutation,
    Observation,
    Summary,
    UNDER_ASAN,
    TrialRecord,
    Worker,
    checksum_section,
    classify,
    copy_folder,
    flip_bytes,
    judge_checksummed,
    observe_ours,
    prepare_fixtures,
    run_campaign,
)

# Derandomized: the same trials every run, so a red run replays with the printed command.
CAMPAIGN_SEED = 20240601
CAMPAIGN_TRIALS = int(os.environ.get("CORRUPTION_FUZZ_TRIALS", "3000"))  # ~65-90 s on 2 cores
TRIAL_TIMEOUT = 30.0


def test_corruption_campaign_has_no_failures():
    summary = run_campaign(CAMPAIGN_TRIALS, CAMPAIGN_SEED, TRIAL_TIMEOUT)
    assert sum(summary.counts.values()) == CAMPAIGN_TRIALS
    if summary.failures:  # the digest, not the repr of hundreds of records
        pytest.fail(summary.digest(), pytrace=False)


# --- the classifier itself: a harness that cannot fail proves nothing ------------------------

FOLDER = Path("/data/recording/original")
TRUTH = np.arange(4 * 3 * 5, dtype=np.uint16).reshape(4, 3, 5)


class FakeDataset:
    """Stands in for SplitDataset: returns ``values`` (wrong ones, if we choose)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.shape = values.shape

    def read(self, index=(), threads=None):
        return self.values[index].copy()

    def __getitem__(self, index):
        return self.read(index)

    def close(self):
        pass


def flipped_chunk() -> Mutation:
    return Mutation("fake", "chunk-flip", "chunk", "file", "0001.h5",
                    "0001.h5: 1 byte flipped in chunk 0")


def observation_of(values: np.ndarray, h5py_status: str = "right") -> Observation:
    ours, arrays = observe_ours(FOLDER, TRUTH, open_dataset=lambda folder: FakeDataset(values))
    h5py = {"files": {"0000.h5": {"status": "right"}, "0001.h5": {"status": h5py_status}},
            "complete": True, "ours_match_h5py": dict.fromkeys(arrays, False)}
    return Observation(ours=ours, pristine={"status": "equal"}, h5py=h5py)


def error_observation(error: Exception) -> Observation:
    def open_dataset(folder):
        raise error

    ours, _ = observe_ours(FOLDER, TRUTH, open_dataset=open_dataset)
    return Observation(ours=ours, pristine={"status": "equal"}, h5py=None)


def test_classifier_accepts_the_truth():
    verdict = classify(flipped_chunk(), observation_of(TRUTH), FOLDER)
    assert verdict.outcome == "ok-correct", verdict


def test_classifier_flags_wrong_values_where_h5py_reads_right():
    wrong = TRUTH.copy()
    wrong[2, 1, 3] += 1  # one element off
    verdict = classify(flipped_chunk(), observation_of(wrong), FOLDER)
    assert verdict.outcome == "wrong-where-h5py-right", verdict
    assert verdict.failed


def test_classifier_flags_wrong_values_where_h5py_raises():
    verdict = classify(flipped_chunk(), observation_of(TRUTH[::-1], h5py_status="error"), FOLDER)
    assert verdict.outcome == "wrong-where-h5py-raises", verdict


def test_classifier_flags_a_silently_shorter_array():
    verdict = classify(flipped_chunk(), observation_of(TRUTH[:3]), FOLDER)  # no warning given
    assert verdict.failed, verdict


def test_classifier_flags_wrong_values_for_a_detectable_json_mutation():
    mutation = Mutation("fake", "json-number", "shape_block", "json", JSON_NAME,
                        "shape_block[0] 2 -> 1")
    verdict = classify(mutation, observation_of(TRUTH + 1), FOLDER)
    assert verdict.outcome == "wrong-other", verdict


def test_classifier_flags_exceptions_that_are_not_ours():
    verdict = classify(flipped_chunk(), error_observation(IndexError("index 7 is out of bounds")),
                       FOLDER)
    assert verdict.outcome == "unclear-exception", verdict


def test_classifier_flags_errors_that_blame_another_file():
    from split_dataset import ChunkReadError

    error = ChunkReadError(f"{FOLDER}/0000.h5: chunk (0, 0) of 'stack': corrupt")
    verdict = classify(flipped_chunk(), error_observation(error), FOLDER)
    assert verdict.outcome == "unclear-exception", verdict
    error = ChunkReadError(f"{FOLDER}/0001.h5: chunk (0, 0) of 'stack': corrupt")
    assert classify(flipped_chunk(), error_observation(error), FOLDER).outcome == "ok-error"


def test_the_checksummed_read_is_counted_apart_from_the_outcome():
    from split_dataset import ChunkReadError

    wrong = TRUTH.copy()
    wrong[2, 1, 3] += 1
    observation = observation_of(wrong)
    mismatch = ChunkReadError(f"{FOLDER}/0001.h5: chunk (0, 0) of 'stack': checksum mismatch")
    observation.checksummed = error_observation(mismatch).ours
    verdict = classify(flipped_chunk(), observation, FOLDER)
    assert verdict.outcome == "wrong-where-h5py-right", verdict  # judges the plain read only

    def judge() -> str | None:
        return judge_checksummed(flipped_chunk(), observation, FOLDER, checksums=True)

    assert judge() == "caught-by-checksum"
    assert judge_checksummed(flipped_chunk(), observation, FOLDER, checksums=False) is None
    observation.checksummed = error_observation(ChunkReadError(f"{FOLDER}/0001.h5: bad")).ours
    assert judge() == "caught-other"
    observation.checksummed = error_observation(ChunkReadError(f"{FOLDER}/0000.h5: bad")).ours
    assert judge() == "unclear-error"
    observation.checksummed = observation_of(wrong).ours
    assert judge() == "wrong"
    observation.checksummed = observation_of(TRUTH).ours
    assert judge() == "correct"


def test_a_crash_of_the_checksummed_read_is_a_crash():
    observation = observation_of(TRUTH)
    observation.pristine = None
    observation.died_in, observation.signal = PHASE_CHECKSUMS, "SIGSEGV"
    assert classify(flipped_chunk(), observation, FOLDER).outcome == "crash"
    assert judge_checksummed(flipped_chunk(), observation, FOLDER, checksums=True) == "crash"


def test_checksums_catch_a_flip_in_a_raw_chunk_of_our_writers_data(tmp_path):
    """A chunk stored raw (filter mask set) has no header or codec that could notice a flipped
    byte: no reader can tell without checksums, the checksummed read names the file."""
    fixtures = prepare_fixtures(tmp_path / "pristine", (WRITER_FIXTURE, "sd_blosc_lz4"))
    assert fixtures[WRITER_FIXTURE].checksums and not fixtures["sd_blosc_lz4"].checksums
    fixture = fixtures[WRITER_FIXTURE]
    block = next(f for f in fixture.files if any(mask for _, _, mask in f.chunks))
    offset, size, _ = next(chunk for chunk in block.chunks if chunk[2])
    folder = tmp_path / "trial" / fixture.name
    copy_folder(fixture.folder, folder)
    changes = flip_bytes(folder / block.name, [offset + size // 2], np.random.default_rng(0))
    mutation = Mutation(fixture.name, "chunk-flip", "stored-raw", "file", block.name,
                        f"{block.name}: byte flipped in a raw chunk", {"changes": changes})
    worker = Worker(fixtures, tmp_path)
    try:
        request = {"op": "trial", "trial": 0, "fixture": fixture.name, "folder": str(folder)}
        observation = worker.run(request, TRIAL_TIMEOUT)
    finally:
        worker.stop()
    verdict = classify(mutation, observation, folder)
    assert verdict.outcome == "undetectable", verdict
    effect = judge_checksummed(mutation, observation, folder, fixture.checksums)
    assert effect == "caught-by-checksum", observation.checksummed
    summary = Summary(0, 1, TRIAL_TIMEOUT, (WRITER_FIXTURE,),
                      [TrialRecord(0, 0, mutation, verdict, observation, checksum_effect=effect)],
                      0.0, 1)
    assert summary.checksum_effects() == {"undetectable": {"caught-by-checksum": 1}}
    assert "**1** of these raised" in "\n".join(checksum_section(summary))


def test_classifier_flags_poisoned_later_reads():
    observation = observation_of(TRUTH)
    observation.pristine = {"status": "wrong", "selection": "threads=1"}
    verdict = classify(flipped_chunk(), observation, FOLDER)
    assert verdict.outcome == "later-reads-affected", verdict


@pytest.fixture
def worker(tmp_path):
    worker = Worker({}, tmp_path)
    yield worker
    worker.stop()


def test_worker_crash_and_hang_are_detected_and_the_worker_restarts(worker):
    crashed = worker.run({"op": "selftest", "action": "segfault"}, timeout=60)
    assert crashed.died_in == PHASE_OURS, crashed
    if UNDER_ASAN:  # ASan (tests/asan.sh) catches the fault and ends the process itself:
        # SIGABRT, or an exit status when its own report faults ("nested bug")
        assert "AddressSanitizer" in crashed.stderr_tail, crashed
    else:
        assert crashed.signal == "SIGSEGV" and "Segmentation fault" in crashed.stderr_tail
    assert classify(flipped_chunk(), crashed, FOLDER).outcome == "crash"
    hung = worker.run({"op": "selftest", "action": "sleep", "seconds": 60}, timeout=1)
    assert hung.timed_out_in == PHASE_OURS, hung
    assert classify(flipped_chunk(), hung, FOLDER).outcome == "hang"
    fine = worker.run({"op": "selftest", "action": "sleep", "seconds": 0}, timeout=60)
    assert not (fine.died_in or fine.timed_out_in)
    assert worker.starts == 3
    assert set(FAILURE_OUTCOMES) >= {"crash", "hang"}
