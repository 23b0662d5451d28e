"""contract.join: the rule that pairs scores with their outcomes, case by case."""

from __future__ import annotations

from contract.join import Judgement, Outcome, OutcomeJoin, in_sample

W = 1000  # window, ms


def join(missing: str = "negative", **caps: int) -> OutcomeJoin[str]:
    return OutcomeJoin(
        W,
        "negative" if missing == "negative" else "unknown",
        max_sessions=caps.get("max_sessions", 100),
        max_pending_outcomes=caps.get("max_pending_outcomes", 100),
    )


def bought(time_ms: int, purchased: bool = True) -> Outcome:
    return Outcome(time_ms, purchased, time_ms)


def only(judged: list[Judgement[str]]) -> Judgement[str]:
    assert len(judged) == 1, judged
    return judged[0]


def test_outcome_after_score_is_judged_when_the_watermark_reaches_it() -> None:
    j = join()
    j.add_record("s", "primary", 100, "score")
    j.add_outcome("s", bought(300))
    assert j.advance(299) == []
    judged = only(j.advance(300))
    assert (judged.label, judged.held, judged.decided_ms) == (True, {"primary": "score"}, 300)


def test_outcome_read_before_its_score_is_kept_and_matched() -> None:
    j = join()
    j.add_outcome("s", bought(300))
    assert j.held_outcomes == 1
    j.add_record("s", "primary", 100, "score")
    judged = only(j.advance(300))
    assert judged.label is True
    assert j.held_outcomes == 0


def test_outcome_earlier_than_the_score_is_judged_at_the_score() -> None:
    j = join()
    j.add_outcome("s", bought(50, purchased=False))
    j.add_record("s", "primary", 100, "score")
    judged = only(j.advance(100))
    assert judged.label is False
    assert judged.decided_ms == 100


def test_no_outcome_in_the_window_is_a_negative_or_unknown() -> None:
    for missing, label in (("negative", False), ("unknown", None)):
        j = join(missing)
        j.add_record("s", "primary", 100, "score")
        assert j.advance(100 + W - 1) == []
        assert only(j.advance(100 + W)).label is label


def test_outcome_after_the_window_is_ignored() -> None:
    j = join()
    j.add_record("s", "primary", 100, "score")
    j.add_outcome("s", bought(100 + W + 1))
    assert j.ignored["outcome_after_window"] == 1
    assert only(j.advance(100 + W + 1)).label is False


def test_duplicate_outcomes_judge_once_with_the_earliest() -> None:
    j = join()
    j.add_record("s", "primary", 100, "score")
    j.add_outcome("s", bought(400, purchased=False))
    j.add_outcome("s", bought(300, purchased=True))  # earlier one read later: it wins
    judged = only(j.advance(500))
    assert judged.label is True
    assert judged.decided_ms == 300
    j.add_outcome("s", bought(600))  # after the decision: ignored, not judged again
    assert j.advance(700) == []
    assert j.ignored["duplicate_outcome"] == 2


def test_an_outcome_for_an_unknown_session_is_dropped_after_the_window() -> None:
    j = join()
    j.add_outcome("ghost", bought(100))
    assert j.advance(100 + W) == []
    assert j.held_outcomes == 1
    assert j.advance(100 + W + 1) == []
    assert j.held_outcomes == 0
    assert j.ignored["unknown_session"] == 1


def test_a_session_scored_twice_is_judged_on_its_latest_score_before_the_outcome() -> None:
    j = join()
    j.add_record("s", "primary", 100, "first")
    j.add_record("s", "primary", 500, "after the outcome")
    j.add_record("s", "primary", 200, "second")  # read out of order
    j.add_outcome("s", bought(300))
    judged = only(j.advance(10_000))
    assert judged.held == {"primary": "second"}
    assert judged.held_time_ms == {"primary": 200}


def test_a_score_after_the_decision_is_ignored() -> None:
    j = join()
    j.add_record("s", "primary", 100, "score")
    j.add_outcome("s", bought(200))
    only(j.advance(200))
    j.add_record("s", "primary", 250, "late")
    assert j.advance(2000) == []
    assert j.ignored["after_decision"] == 1


def test_two_builds_at_once_are_judged_on_the_same_outcome() -> None:
    j = join()
    j.add_record("s", "primary", 100, "champion")
    j.add_record("s", "shadow", 101, "challenger")
    j.add_outcome("s", bought(300))
    judged = only(j.advance(300))
    assert judged.held == {"primary": "champion", "shadow": "challenger"}


def test_the_order_records_are_read_in_does_not_change_the_judgements() -> None:
    records = [("a", 100), ("b", 150), ("a", 180), ("c", 190)]
    outcomes = [("a", 200, True), ("b", 120, False), ("a", 210, False), ("zz", 130, True)]

    def run(order: list[int]) -> list[tuple[object, ...]]:
        j = join()
        events = [("r", *r) for r in records] + [("o", *o) for o in outcomes]
        for index in order:
            kind, session, time_ms, *rest = events[index]
            if kind == "r":
                j.add_record(str(session), "primary", int(time_ms), f"{session}@{time_ms}")
            else:
                j.add_outcome(str(session), bought(int(time_ms), bool(rest[0])))
        return sorted(
            (x.session_id, x.label, x.decided_ms, tuple(x.held.values())) for x in j.advance(5000)
        )

    assert run(list(range(8))) == run(list(reversed(range(8)))) == run([4, 0, 5, 1, 6, 2, 7, 3])


def test_caps_drop_and_count_without_evicting() -> None:
    j = join(max_sessions=2, max_pending_outcomes=1)
    for name in "abc":
        j.add_record(name, "primary", 100, name)
    j.add_outcome("x", bought(100))
    j.add_outcome("y", bought(100))
    assert (j.held_sessions, j.held_outcomes) == (2, 1)
    assert j.ignored["session_cap"] == 1
    assert j.ignored["outcome_cap"] == 1


def test_the_sample_is_deterministic_and_near_its_rate() -> None:
    ids = [f"session-{i}" for i in range(20_000)]
    chosen = [s for s in ids if in_sample(s, 0.1)]
    assert chosen == [s for s in ids if in_sample(s, 0.1)]
    assert 1800 < len(chosen) < 2200
    assert set(chosen) <= {s for s in ids if in_sample(s, 0.5)}
    assert all(in_sample(s, 1.0) for s in ids[:10])
