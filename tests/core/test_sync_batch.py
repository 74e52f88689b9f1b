"""The blocking batch: `with client.images.batch(...) as batch:` from plain code."""

from __future__ import annotations

import pytest

from evolink import Evolink, EvolinkError, OutcomeKind
from evolink.testing import TEST_API_KEY, Simulator


def test_a_blocking_batch_runs_every_input_to_its_outcome():
    """submit from a script, leave the `with`, read the report."""
    sim = Simulator(seed=5, durations=0.2)
    with Evolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        with client.images.batch(max_in_flight=4) as batch:
            for i in range(6):
                batch.submit(f"a lighthouse, take {i}")
            assert 6 == batch.progress().submitted
        report = batch.report()
    assert report.ok
    assert [OutcomeKind.COMPLETED] * 6 == [o.kind for o in report.outcomes]
    assert 6 == len(batch.created())
    assert 6 == sim.count("POST", "/v1/images/generations")


def test_an_error_in_the_block_abandons_and_propagates():
    """An exception inside the `with` stops the batch and comes out unchanged."""
    sim = Simulator(seed=6, durations=30)
    with Evolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        with pytest.raises(KeyError), client.images.batch() as batch:
            batch.submit("a fox")
            raise KeyError("mine")
        report = batch.report()
    assert [OutcomeKind.ABANDONED] == [o.kind for o in report.outcomes]


def test_a_blocking_batch_must_be_entered():
    """Submitting outside `with` says how to use it."""
    with Evolink(api_key=TEST_API_KEY, transport=Simulator().transport()) as client:
        batch = client.images.batch()
        with pytest.raises(EvolinkError, match="with client"):
            batch.submit("a fox")
