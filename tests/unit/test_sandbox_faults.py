"""The sandbox's fault plan: a `times`-limited rule is held by the call that drew it and
spent only if it took effect there."""

from xero_sandbox.faults import FaultPlan, FaultPlanIn, FaultRule

STATEMENTS = "/bankfeeds.xro/1.0/Statements"


def planned(*rules: FaultRule) -> FaultPlan:
    plan = FaultPlan()
    plan.replace(FaultPlanIn(rules=list(rules), seed=1))
    return plan


def test_a_held_one_off_rule_is_not_drawn_by_a_second_call_in_flight() -> None:
    plan = planned(FaultRule(kind="drop_after_write", times=1))
    first = plan.draw("POST", STATEMENTS)
    assert [r.kind for r in first] == ["drop_after_write"]
    assert plan.draw("POST", STATEMENTS) == []
    plan.unused(first)
    again = plan.draw("POST", STATEMENTS)
    assert again == first
    plan.struck(again[0])
    assert (plan.rules, plan.fired) == ([], {"drop_after_write": 1})
    assert plan.draw("POST", STATEMENTS) == []


def test_a_rule_with_times_left_stays_with_what_is_left() -> None:
    plan = planned(FaultRule(kind="error", times=3))
    a, b = plan.draw("GET", "/x"), plan.draw("GET", "/x")
    plan.struck(a[0])
    plan.unused(b)
    assert [r.times for r in plan.rules] == [2]
    assert plan.fired == {"error": 1}


def test_a_rule_drawn_before_the_plan_was_replaced_leaves_the_new_plan_alone() -> None:
    plan = planned(FaultRule(kind="timeout", times=1))
    old = plan.draw("GET", "/x")
    plan.replace(FaultPlanIn(rules=[FaultRule(kind="timeout", times=1)]))
    plan.unused(old)
    plan.struck(old[0])
    assert [r.times for r in plan.rules] == [1]
    assert len(plan.draw("GET", "/x")) == 1


def test_an_added_rule_keeps_the_plans_draws_and_counts() -> None:
    plan = planned(FaultRule(kind="error", rate=0.5))
    plan.struck(plan.rules[0])
    plan.add(FaultRule(kind="rate_limit", times=1))
    assert [r.kind for r in plan.rules] == ["error", "rate_limit"]
    assert plan.fired == {"error": 1}
