"""A tiny format-2 policy for tests worked by hand (not a test module: imported by tests).

Branches (shares form): score = 100 × (0.5 × frac_a + 0.3 × frac_b + 0.2 × survey rate),
    dimension a: held (binary, 4) + events (per_event, 2 an event, at most 6)     max 10
    dimension b: lapses (per_occurrence, 5, 1 off each) + extra (bonus, 1 a unit, cap 2)  max 5
    answers yes / so / no = 1 / 0.5 / 0; levels top / mid / low by cuts 80 / 60;
    veto vacancy (vacant >= 1: cap low); weak when score < 40 or the vacancy veto fires;
    talk when weak, reorganise when weak two years running.
Members: 4 periods, accrual mean, record = min(100, 100 × (scored + min(3, bonus) − penalties) / max),
    att (binary 5) + tasks (per_event, 5 a task, at most 10): max 15 (class part: tasks 5 → max 10);
    complaints (penalty, 2 each, at most 4), deeds (bonus, 2 each, cap 4); annual = 0.5 record + 0.5
    appraisal; grades good / ok / bad by cuts 80 / 50; veto fraud (member fact >= 1: force bad);
    class senior exempt; help when ok, expel when bad.
"""
from __future__ import annotations

import pandas as pd

import branchsim as bs


def P(value):
    """A parameter with provenance."""
    return {"value": value, "assumption": "test"}


def document() -> dict:
    return {
        "schema": "branchsim-policy/2", "name": "tiny",
        "branch": {
            "levels": {"top": {"label": "T"}, "mid": {"label": "M"}, "low": {"label": "L"}},
            "score": {"form": "shares"},
            "satisfaction_share": P(0.2),
            "dimensions": {"a": {"label": "A", "share": P(0.5)}, "b": {"label": "B", "share": P(0.3)}},
            "survey": {"answer_values": {"yes": P(1.0), "so": P(0.5), "no": P(0.0)}},
            "indicators": {
                "held": {"label": "held", "dimension": "a", "fact": "held", "rule": "binary", "points": P(4)},
                "events": {"label": "events", "dimension": "a", "fact": "events", "rule": "per_event",
                           "points": P(6), "per_event": P(2)},
                "lapses": {"label": "lapses", "dimension": "b", "fact": "lapses", "rule": "per_occurrence",
                           "points": P(5), "per_occurrence": P(1)},
                "extra": {"label": "extra", "dimension": "b", "fact": "extra", "rule": "bonus", "points": P(2),
                          "per_unit": P(1)},
            },
            "facts": {"vacant": {"label": "vacant", "kind": "binary"},
                      "scandal": {"label": "scandal", "kind": "binary"},
                      "honour": {"label": "honour", "kind": "binary"},
                      "candidates": {"label": "candidates", "kind": "count"}},
            "types": {"t1": {"label": "T1"}, "t2": {"label": "T2"}},
            "rating": {"design": "cuts", "cuts": {"top": P(80), "mid": P(60)}},
            "vetoes": {"vacancy": {"label": "vacancy", "fact": "vacant", "at_least": P(1), "cap": "low"}},
            "designations": {"weak": {"label": "weak", "criteria": {
                "low_score": {"kind": "score_below", "below": P(40)},
                "vacancy": {"kind": "veto", "veto": "vacancy"}}}},
        },
        "member": {
            "grades": {"good": {"label": "G"}, "ok": {"label": "O"}, "bad": {"label": "B"}},
            "record": {"periods": 4, "accrual": "mean"},
            "record_share": P(0.5), "appraisal_share": P(0.5),
            "score": {"cap": P(100), "bonus_cap": P(3)},
            "groups": {"g": {"label": "g"}},
            "indicators": {
                "att": {"label": "att", "group": "g", "fact": "att", "rule": "binary", "points": P(5)},
                "tasks": {"label": "tasks", "group": "g", "fact": "tasks", "rule": "per_event", "points": P(10),
                          "per_event": P(5)},
                "complaints": {"label": "complaints", "group": "g", "fact": "complaints", "rule": "penalty",
                               "points": P(4), "per_occurrence": P(2)},
                "deeds": {"label": "deeds", "group": "g", "fact": "deeds", "rule": "bonus", "points": P(4),
                          "per_unit": P(2)},
            },
            "facts": {"fraud": {"label": "fraud", "kind": "binary"}},
            "classes": {"regular": {"label": "R"}, "senior": {"label": "S", "exempt": P(True)},
                        "part": {"label": "P", "indicators": {"tasks": {"points": P(5)}}}},
            "rating": {"design": "cuts", "cuts": {"good": P(80), "ok": P(50)}},
            "vetoes": {"fraud": {"label": "fraud", "fact": "fraud", "at_least": P(1), "force": "bad"}},
        },
        "consequences": {
            "talk": {"label": "talk", "unit": "branch", "when": {"designation": "weak"}},
            "reorganise": {"label": "reorganise", "unit": "branch", "when": {"designation": "weak", "years": P(2)}},
            "help": {"label": "help", "unit": "member", "when": {"grade": "ok"}},
            "expel": {"label": "expel", "unit": "member", "when": {"grade": "bad"}},
        },
    }


def policy() -> bs.Policy:
    return bs.Policy(document())


FULL = {"held": 1, "events": 3, "lapses": 0, "extra": 0, "vacant": 0, "scandal": 0, "honour": 0, "candidates": 1}


def branches(*rows) -> pd.DataFrame:
    """Branch rows: ``(id, type, {facts}, (yes, so, no))``; facts not given earn full points."""
    out = []
    for bid, t, facts, survey in rows:
        out.append({"branch_id": bid, "type": t, **FULL, **facts,
                    "survey_yes": survey[0], "survey_so": survey[1], "survey_no": survey[2]})
    return pd.DataFrame(out)


def evaluate(p: bs.Policy, *rows, **kwargs) -> pd.DataFrame:
    return bs.evaluate_tables(p, branches(*rows), **kwargs).branches.set_index("branch_id")
