"""Policy format 1 → format 2.

Format 1 was shaped like the first city's scheme (star levels 1–5, fixed grade,
answer and consequence names). Its vocabulary is data
(``data/formats/policy-v1.yaml``); this module only moves entries to where
format 2 keeps them (``docs/policy-format.md``, "Format 1 and migration").
The migration is a pure function of the document: a migrated file loads,
evaluates and saves like any format-2 file.
"""
from __future__ import annotations

import copy
from functools import lru_cache

__all__ = ["FORMAT_1", "FORMAT_2", "migrate", "is_format_1"]

FORMAT_1 = "branchsim-policy/1"
FORMAT_2 = "branchsim-policy/2"


@lru_cache(maxsize=1)
def _vocabulary() -> dict:
    from .policy import data_path, read_yaml
    return read_yaml(data_path("formats", "policy-v1.yaml"), what="format vocabulary")


def is_format_1(doc) -> bool:
    """Whether a document is (or claims to be) of format 1: its schema, or a format-1 key."""
    if not isinstance(doc, dict):
        return False
    if doc.get("schema") == FORMAT_1:
        return True
    branch = doc.get("branch")
    return doc.get("schema") is None and isinstance(branch, dict) and "star_cuts" in branch


def _provenance(leaf) -> dict:
    """The provenance keys of a parameter leaf (``quote`` or ``assumption``), as texts."""
    if not isinstance(leaf, dict):
        return {}
    return {k: leaf[k] for k in ("quote", "assumption") if k in leaf}


def migrate(doc: dict) -> dict:
    """A format-2 document from a format-1 one (a fresh copy; the input is not changed).

    Entries the migration does not know are carried over unchanged, so the
    format-2 checks report them by their path.

    >>> v1 = {"schema": FORMAT_1, "branch": {"star_cuts": {3: {"value": 70, "assumption": "typical"}}}}
    >>> v2 = migrate(v1)
    >>> v2["schema"], len(v2["branch"]["levels"]), v2["branch"]["rating"]["design"]
    ('branchsim-policy/2', 2, 'cuts')
    """
    voc = _vocabulary()
    old = copy.deepcopy(doc)
    out = {"schema": FORMAT_2}
    for key in ("name", "description", "source"):
        if key in old:
            out[key] = old.pop(key)
    old.pop("schema", None)
    if isinstance(old.get("branch"), dict):
        out["branch"] = _branch(old.pop("branch"), voc)
    if isinstance(old.get("member"), dict):
        out["member"] = _member(old.pop("member"), voc)
    if isinstance(old.get("consequences"), dict):
        out["consequences"] = _consequences(old.pop("consequences"), voc)
    if isinstance(old.get("interventions"), dict):
        out["interventions"] = _interventions(old.pop("interventions"), voc)
    if isinstance(old.get("structure"), dict):
        out["structure"] = _structure(old.pop("structure"), voc)
    out.update(old)                      # unknown top-level keys: reported by the format-2 checks
    return out


def _level_id(voc: dict, key) -> str:
    entry = voc["star_levels"].get(str(key))
    return entry["id"] if entry else f"star_{key}"


def _branch(br: dict, voc: dict) -> dict:
    cuts = br.pop("star_cuts", None)
    weak_below = br.pop("weak_below", None)
    vetoes = br.pop("vetoes", None)
    no_cap = voc["no_cap"]
    used = {0}
    if isinstance(cuts, dict):
        used |= {int(k) for k in cuts if str(k).lstrip("-").isdigit()}
    for veto in (vetoes or {}).values():
        cap = (veto or {}).get("max_star", {})
        cap = cap.get("value") if isinstance(cap, dict) else cap
        if isinstance(cap, int) and not isinstance(cap, bool) and cap != no_cap:
            used.add(cap)
    levels = {}
    for k in sorted(used, reverse=True):
        entry = voc["star_levels"].get(str(k), {"label": f"{k}", "en": f"{k}"})
        levels[_level_id(voc, k)] = {"label": entry["label"], "en": entry["en"]}
    out: dict = {"levels": levels, "score": {"form": "shares"}}
    survey = br.pop("survey", None)
    for key, value in list(br.items()):
        if key == "types":
            continue
        out[key] = br.pop(key)
    if survey is not None:
        if isinstance(survey, dict) and isinstance(survey.get("answer_values"), dict):
            survey = dict(survey)
            survey["answer_labels"] = {a: voc["answers"][a]["label"] for a in survey["answer_values"]
                                       if a in voc["answers"]}
        out["survey"] = survey
    if "types" in br:
        out["types"] = br.pop("types")
    # Format 1 had fixed state facts (drawn with a unit's truth, recorded without error); format 2
    # marks them on the indicator (`state: true`), so a migrated file generates as format 1 did.
    for ind in (out.get("indicators") or {}).values():
        if isinstance(ind, dict) and ind.get("fact") in voc.get("state_facts", ()):
            ind.setdefault("state", True)
    rating: dict = {"design": "cuts"}
    if isinstance(cuts, dict):
        rating["cuts"] = {_level_id(voc, k): v for k, v in sorted(cuts.items(), key=lambda kv: -_as_int(kv[0]))}
    elif cuts is not None:
        rating["cuts"] = cuts
    out["rating"] = rating
    des = voc["designation"]
    criteria: dict = {}
    if weak_below is not None:
        criteria[des["score_criterion"]] = {"kind": "score_below", "below": weak_below}
    if isinstance(vetoes, dict):
        new_vetoes = {}
        for vid, veto in vetoes.items():
            if not isinstance(veto, dict):
                new_vetoes[vid] = veto
                continue
            veto = dict(veto)
            cap = veto.pop("max_star", None)
            weak = veto.pop("weak", None)
            entry = {k: veto.pop(k) for k in ("label", "indicator", "below") if k in veto}
            cap_value = cap.get("value") if isinstance(cap, dict) else cap
            if cap_value != no_cap and cap is not None:
                entry["cap"] = _level_id(voc, cap_value) if isinstance(cap_value, int) else cap_value
                entry.update(_provenance(cap))
            entry.update(veto)                       # unknown keys: reported by the checks
            new_vetoes[vid] = entry
            if isinstance(weak, dict) and weak.get("value") is True:
                criteria[vid] = {"kind": "veto", "veto": vid, **_provenance(weak)}
            elif weak is not None and not isinstance(weak, dict):
                criteria[vid] = {"kind": "veto", "veto": vid, "invalid_weak": weak}
        out["vetoes"] = new_vetoes
    if criteria:
        out["designations"] = {des["id"]: {"label": des["label"], "en": des["en"], "criteria": criteria}}
    return out


def _as_int(key) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        return 0


def _member(mb: dict, voc: dict) -> dict:
    cuts = mb.pop("grade_cuts", None)
    out: dict = {"grades": {g: dict(v) for g, v in voc["grades"].items()},
                 "record": {"periods": voc["record"]["periods"], "accrual": voc["record"]["accrual"]}}
    if "monthly_share" in mb:
        out["record_share"] = mb.pop("monthly_share")
    out["score"] = {"cap": dict(voc["record"]["cap"])}
    out.update(mb)
    out["rating"] = {"design": "cuts", "cuts": cuts} if cuts is not None else {"design": "cuts"}
    return out


def _consequences(cons: dict, voc: dict) -> dict:
    actions = cons.pop("actions", None) or {}
    effects = cons.pop("effects", None) or {}
    after = cons.pop("reorganise_after", None)
    out = {}
    for aid, action in (actions.items() if isinstance(actions, dict) else []):
        rule = voc["consequences"].get(aid, {})
        entry = dict(action) if isinstance(action, dict) else {"label": action}
        if rule:
            entry["unit"] = rule["unit"]
            entry["when"] = dict(rule["when"])
            if rule.get("years_from") == "reorganise_after" and after is not None:
                entry["when"]["years"] = after
        if isinstance(effects, dict) and aid in effects:
            entry["effect"] = effects[aid]
        out[aid] = entry
    out.update(cons)                     # unknown keys: reported by the checks
    return out


def _interventions(iv: dict, voc: dict) -> dict:
    out = {}
    for name, block in iv.items():
        rule = voc["interventions"].get(name)
        if not isinstance(block, dict) or rule is None:
            out[name] = block
            continue
        entry = {"label": block.get("label", name), "select": rule["select"]}
        if "among" in rule:
            entry["among"] = dict(rule["among"])
        entry.update({k: v for k, v in block.items() if k != "label"})
        out[name] = entry
    return out


def _structure(st: dict, voc: dict) -> dict:
    levels = {}
    for key, lv in voc["structure"].items():
        if key in st:
            levels[lv["id"]] = {"label": lv["label"], "from": st.pop(key)}
    out = {"levels": levels}
    out.update(st)                       # committee_from and unknown keys
    return out
