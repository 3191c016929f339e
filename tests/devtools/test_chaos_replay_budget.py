"""The chaos driver replays the file again after it killed the producer, however many replays it
spent waiting for the kill point (CI once saw three replays end before the point, the kill in the
fourth, the budget's last: the kill was counted as not survived though no post was missing)."""

from __future__ import annotations

from pathlib import Path

from musicnft.devtools.chaos import EmbeddedChaos, Kill
from tests.support.chaos_driver import idle_driver


def _driver(tmp_path: Path) -> EmbeddedChaos:
    chaos = idle_driver(tmp_path)
    chaos.producer_plan = [0.5]  # one producer kill
    chaos.plan = []  # and no stage kill
    return chaos


def test_a_producer_killed_in_the_last_budgeted_replay_still_gets_its_replay(
    tmp_path: Path,
) -> None:
    chaos = _driver(tmp_path)
    attempts: list[int] = []

    def attempt(fresh: bool, pending: list[Kill]) -> int:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 4:
            return 0  # the replay ended before the producer's kill point
        if len(attempts) == 4:  # the budget's last attempt (2 + 2 per producer kill)
            chaos.producer_plan.pop(0)
            kill = Kill("produce", 123, chaos._now())
            chaos.kills.append(kill)
            pending.append(kill)
            return 1  # a killed producer ends its run
        return 0

    chaos._attempt = attempt  # type: ignore[method-assign]
    codes = chaos.replay()

    assert codes == [0, 0, 0, 1, 0]
    assert [k.stage for k in chaos.kills] == ["produce"]
    assert chaos.kills[0].outage is not None  # survived: a replay after it exited 0


def test_runs_that_keep_failing_without_a_producer_kill_still_end(tmp_path: Path) -> None:
    chaos = _driver(tmp_path)

    def attempt(fresh: bool, pending: list[Kill]) -> int:
        return 1  # broken for another reason: never a producer kill

    chaos._attempt = attempt  # type: ignore[method-assign]
    assert chaos.replay() == [1, 1, 1, 1]
