"""Operating-room schedule: phases from the plan, CP-SAT assignment, independent checker."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from twinsep.cli import main
from twinsep.errors import InputError
from twinsep.schedule import (
    InfeasibleRosterError,
    Person,
    check_schedule,
    derive_operation,
    load_roster,
    parse_roster,
    plan_schedule,
)

ROSTER = Path(__file__).resolve().parents[2] / "examples" / "roster.yaml"


def _roster_data() -> dict:
    return yaml.safe_load(ROSTER.read_text())


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case folder without plan.json, scheduled once with the example roster."""
    case = tmp_path_factory.mktemp("sched") / "case"
    case.mkdir()
    assert main(["schedule", str(case), "--roster", str(ROSTER)]) == 0
    return case


def _schedule(case: Path) -> dict:
    return json.loads((case / "plan.json").read_text())["schedule"]


def test_example_roster_is_30_people_for_about_24_hours() -> None:
    roster = load_roster(ROSTER)
    assert len(roster.people) == 30
    op = derive_operation({}, roster.phases)
    assert 20 <= op.end_min / 60 <= 26
    assert op.final and op.separation_min is not None


def test_example_schedule_passes_the_independent_checker(solved: Path) -> None:
    sched = _schedule(solved)
    assert check_schedule(sched, _roster_data()) == []
    assert sched["solver"]["status"] in ("OPTIMAL", "FEASIBLE")
    assert any("default" in n for n in sched["notes"])  # no plan: defaults, said so
    for name in ("gantt.png", "gantt.svg", "runsheets.md", "checklists.md"):
        assert (solved / "schedule" / name).stat().st_size > 0


def test_assignment_tables_follow_the_separation(solved: Path) -> None:
    sched = _schedule(solved)
    sep_h = sched["operation"]["separation_h"]
    keys = {"person", "role", "phase", "table", "start_h", "end_h"}
    tables = set()
    for a in sched["assignments"]:
        assert keys <= set(a)
        # a hand-over ending at separation leads to a duty on one of the two tables
        before = a["end_h"] <= sep_h if a["kind"] == "duty" else a["end_h"] < sep_h
        if before:
            assert a["table"] is None
        else:
            assert a["table"] in ("purple", "orange")
            tables.add(a["table"])
    assert tables == {"purple", "orange"}
    # both tables staffed at once right after separation
    after = {a["table"] for a in sched["assignments"]
             if a["kind"] == "duty" and a["start_h"] <= sep_h < a["end_h"] + 1e-9
             and a["table"]}
    assert after == {"purple", "orange"}


def test_search_starts_from_the_greedy_schedule_and_improves_it(solved: Path) -> None:
    from twinsep.schedule.heuristic import first_schedule, objective
    from twinsep.schedule.model import W_LOAD, W_ROLE, W_STINT, build_segments

    roster = load_roster(ROSTER)
    op = derive_operation({}, roster.phases)
    seg = build_segments(op, roster.settings.slot_min)
    held, gaps = first_schedule(roster, op, seg)
    assert gaps == 0  # the example roster needs no search to be staffed
    stints, roles, load = objective(seg, held)
    sol = _schedule(solved)["solver"]
    assert sol["start"] == "greedy"
    assert (W_STINT * sol["stints"] + W_ROLE * sol["roles_used"] + W_LOAD * sol["max_load_min"]
            <= W_STINT * stints + W_ROLE * roles + W_LOAD * load)


def test_tight_roster_the_greedy_pass_cannot_staff() -> None:
    # two anaesthetic nurses fewer: the forward pass leaves a gap, the search closes it
    data = _roster_data()
    data["people"] = [p for p in data["people"]
                      if p["person"] not in ("Grace Nwosu", "Kofi Mensah")]
    sched = plan_schedule({}, parse_roster(data))
    assert sched["solver"]["start"] != "greedy"
    assert check_schedule(sched, data) == []


def test_same_input_gives_byte_identical_plan(solved: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    again.mkdir()
    assert main(["schedule", str(again), "--roster", str(ROSTER)]) == 0
    assert (again / "plan.json").read_bytes() == (solved / "plan.json").read_bytes()


def test_contingencies_name_the_vessel_and_responders(solved: Path) -> None:
    sched = _schedule(solved)
    haem = [c for c in sched["contingencies"] if c["event"].startswith("haemorrhage from shared")]
    assert haem and all(c["responders"] for c in haem)
    unstable = [c for c in sched["contingencies"] if "instability of the orange" in c["event"]]
    assert unstable
    for c in unstable:
        assert all(r["twin"] in ("orange", None) for r in c["responders"])


def test_checker_catches_broken_rules(solved: Path) -> None:
    base = _schedule(solved)
    roster = _roster_data()

    s = copy.deepcopy(base)  # remove one duty record: a need is unfilled
    i = next(i for i, a in enumerate(s["assignments"]) if a["kind"] == "duty")
    del s["assignments"][i]
    assert any("has 0 of" in e or "of 1" in e or "of 2" in e for e in check_schedule(s, roster))

    s = copy.deepcopy(base)  # a stint far beyond the continuous-hours limit
    a = next(a for a in s["assignments"] if a["kind"] == "duty")
    a["end_h"] = a["start_h"] + 20
    assert any("longer than" in e for e in check_schedule(s, roster))

    s = copy.deepcopy(base)  # drop every hand-over
    s["assignments"] = [a for a in s["assignments"] if a["kind"] != "handover"]
    assert any("hand-over" in e for e in check_schedule(s, roster))

    s = copy.deepcopy(base)  # someone on both tables
    a = next(a for a in s["assignments"] if a["table"] == "purple")
    b = next(b for b in s["assignments"] if b["table"] == "orange")
    b["person"] = a["person"]
    assert any("both twins" in e or "two places" in e for e in check_schedule(s, roster))

    s = copy.deepcopy(base)  # a role the person does not have
    a = next(a for a in s["assignments"] if a["role"] == "anaesthetist")
    a["role"] = "plastic_surgeon"
    assert any("not among the person's skills" in e for e in check_schedule(s, roster))


def test_infeasible_roster_names_the_missing_role(tmp_path: Path, capsys) -> None:
    data = _roster_data()
    anaes = [p for p in data["people"] if p["role"] == "anaesthetist"]
    data["people"] = [p for p in data["people"] if p["role"] != "anaesthetist"] + anaes[:1]
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(data))
    case = tmp_path / "case"
    case.mkdir()
    assert main(["schedule", str(case), "--roster", str(path)]) == 2
    err = capsys.readouterr().err
    assert "infeasible: role 'anaesthetist' needs 2 people at 0.0-" in err
    assert "the roster has 1 available then" in err
    assert not (case / "plan.json").exists()


def test_infeasible_by_hours_is_explained() -> None:
    # three anaesthetists: always two at hand, but one twin would get a single
    # anaesthetist for the whole day (nobody changes colour)
    data = _roster_data()
    anaes = [p for p in data["people"] if p["role"] == "anaesthetist"]
    data["people"] = [p for p in data["people"] if p["role"] != "anaesthetist"] + anaes[:3]
    with pytest.raises(InfeasibleRosterError, match="role 'anaesthetist' needs 1 person at"):
        plan_schedule({}, parse_roster(data))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "roster.yaml: no such roster file"),
        ("people: [unclosed", "roster.yaml: cannot read roster (not valid YAML, line 1"),
        ("people:\n  - {person: A, role: x}\n",
         "roster.yaml: setting people.0.max_continuous_h: Field required (person 'A')"),
        ("people: []\n", "roster.yaml: setting people: must be a non-empty list"),
        ("staff: []\n", "roster.yaml: setting staff: unknown section (expected settings, "
                         "people, phases)"),
        # a misspelt key, a wrong type, an out-of-range value: the file and the key
        ("people:\n  - {person: A, role: x, max_continuous_h: 8, latest: 30}\n",
         "roster.yaml: setting people.0.latest: unknown key (expected person, role, skills, "
         "max_continuous_h, earliest_h, latest_h)"),
        ("settings: {slot_mins: 30}\npeople:\n  - {person: A, role: x, max_continuous_h: 8}\n",
         "roster.yaml: setting settings.slot_mins: unknown setting (expected "
         "handover_overlap_min, min_break_min, slot_min)"),
        ("people:\n  - {person: A, role: x, max_continuous_h: 8}\n"
         "  - {person: B, role: x, max_continuous_h: eight}\n",
         "roster.yaml: setting people.1.max_continuous_h: Input should be a valid number "
         "(person 'B')"),
        ("settings: {min_break_min: true}\npeople:\n  - {person: A, role: x, "
         "max_continuous_h: 8}\n", "roster.yaml: setting settings.min_break_min: Input should "
         "be a valid number"),
        ("people:\n  - {person: A, role: x, max_continuous_h: 8, skills: [1]}\n",
         "roster.yaml: setting people.0.skills.0: Input should be a valid string"),
        ("people:\n  - {person: A, role: x, max_continuous_h: -1}\n",
         "roster.yaml: setting people.0.max_continuous_h: Input should be greater than or "
         "equal to 0 (person 'A')"),
        ("settings: {slot_min: 4}\npeople:\n  - {person: A, role: x, max_continuous_h: 8}\n",
         "roster.yaml: setting settings.slot_min: Input should be greater than or equal to 5"),
        ("people:\n  - {person: A, role: x, max_continuous_h: .inf}\n",
         "roster.yaml: setting people.0.max_continuous_h: Input should be a finite number"),
        ("people:\n  - {person: A, role: x, max_continuous_h: 0.001}\n",
         "roster.yaml: setting people.0.max_continuous_h: must be positive"),
        ("people:\n  - {person: A, role: x, max_continuous_h: 8, earliest_h: 6, latest_h: 6}\n",
         "roster.yaml: setting people.0.latest_h: must be after earliest_h (person 'A')"),
        ("people:\n  - {person: A, role: x, max_continuous_h: 8}\n"
         "  - {person: ' A', role: y, max_continuous_h: 8}\n",
         "roster.yaml: setting people.1.person: 'A' is listed twice"),
        ("people:\n  - {person: A, role: ' ', max_continuous_h: 8}\n",
         "roster.yaml: setting people.0.role: String should have at least 1 character"),
        ("people:\n  - {role: x, max_continuous_h: 8}\n",
         "roster.yaml: setting people.0.person: Field required"),
        ("people:\n  - Ada\n", "roster.yaml: setting people.0: must be a mapping"),
        ("settings: 60\npeople:\n  - {person: A, role: x, max_continuous_h: 8}\n",
         "roster.yaml: setting settings: must be a mapping"),
        ("phases: {surgery: {}}\npeople:\n  - {person: A, role: x, max_continuous_h: 8}\n",
         "roster.yaml: setting phases: unknown phase kind 'surgery'"),
        ("phases: {exposure: {base_min: -5}}\npeople:\n  - {person: A, role: x, "
         "max_continuous_h: 8}\n", "roster.yaml: setting phases.exposure.base_min must be a "
         "number >= 0"),
        ("- {person: A}\n", "roster.yaml: roster must be a mapping"),
    ],
)
def test_bad_roster_is_one_line_exit_2(tmp_path: Path, capsys, text, message) -> None:
    path = tmp_path / "roster.yaml"
    if text is not None:
        path.write_text(text)
    case = tmp_path / "case"
    case.mkdir()
    assert main(["schedule", str(case), "--roster", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    with pytest.raises(InputError) as info:
        load_roster(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (case / "plan.json").exists()


def test_roster_file_model_gives_todays_roster() -> None:
    # the pydantic model of the file turns into the same Roster as the hand-written checks
    roster = load_roster(ROSTER)
    data = _roster_data()
    assert roster.settings.as_dict() == data["settings"] and roster.source == str(ROSTER)
    for entry, person in zip(data["people"], roster.people, strict=True):
        assert person.name == entry["person"] and person.role == entry["role"]
        assert person.skills == tuple(dict.fromkeys([entry["role"], *entry["skills"]]))
        assert person.max_continuous_min == round(entry["max_continuous_h"] * 60)
        assert (person.earliest_min, person.latest_min) == (
            round(entry["earliest_h"] * 60), round(entry["latest_h"] * 60))
    assert all(isinstance(v, int) for v in roster.settings.as_dict().values())
    # defaults, a single skill as a string, names stripped, whole minutes
    r = parse_roster({"settings": {"slot_min": 30.4}, "people": [
        {"person": " Ada ", "role": "neurosurgeon ", "skills": "plastic_surgeon",
         "max_continuous_h": 7.5}]}, "mem")
    assert r.settings.as_dict() == {"handover_overlap_min": 15, "min_break_min": 60,
                                    "slot_min": 30}
    assert r.people[0] == Person("Ada", "neurosurgeon", ("neurosurgeon", "plastic_surgeon"),
                                 450, 0, 48 * 60)
    assert r.phases == {} and r.source == "mem"
    with pytest.raises(InputError, match=r"^mem: a roster must be a mapping"):
        parse_roster(["Ada"], "mem")


def _staged_plan() -> dict:
    """A plan as ``twinsep separate`` writes it: crossing vessels and staging."""
    cross = [
        {"id": 1, "vessel_id": 7, "cross_section_mm2": 12.57, "kept_by": "A"},
        {"id": 2, "vessel_id": 3, "cross_section_mm2": 28.27, "equivalent_diameter_mm": 6.0,
         "kept_by": "B"},
        {"id": 3, "vessel_id": 9, "cross_section_mm2": 3.14, "kept_by": "A"},
    ]
    return {
        "shared": {"vessels": [{"id": 7, "volume_ml": 1.0, "max_diameter_mm": 4.0}],
                   "junction_area_cm2": 80.0},
        "separation": {
            "chosen": "min_risk",
            "cut_area_cm2": {"scalp": 100.0, "bone": 90.0, "dura": 85.0, "brain": 40.0,
                             "vessel": 1.0},
            "crossing_vessels": cross,
            "staging": {"stages": [
                {"stage": 1, "divide": [{"id": 1}], "final_separation": False},
                {"stage": 2, "divide": [{"id": 2}, {"id": 3}], "final_separation": True},
            ]},
        },
    }


def test_phases_come_from_the_plan() -> None:
    plan = _staged_plan()
    op = derive_operation(plan)
    ids = [p.id for p in op.phases]
    assert "divide_vessel_1" not in ids  # divided in stage 1
    assert ids.index("divide_vessel_2") < ids.index("divide_vessel_3") < ids.index("separation")
    assert op.stage == 2 and op.final and list(op.vessels_done) == [1]
    by = {p.id: p for p in op.phases}
    assert by["divide_vessel_2"].vessel["diameter_mm"] == pytest.approx(6.0, abs=0.01)
    assert by["divide_vessel_2"].end_min - by["divide_vessel_2"].start_min > (
        by["divide_vessel_3"].end_min - by["divide_vessel_3"].start_min)
    bigger = derive_operation({"separation": {"cut_area_cm2": {"scalp": 300.0}}})
    small = derive_operation({"separation": {"cut_area_cm2": {"scalp": 10.0}}})
    assert bigger.end_min > small.end_min
    assert by["dural_repair_purple"].start_min == by["dural_repair_orange"].start_min


def test_stage_option_picks_an_earlier_operation() -> None:
    op = derive_operation(_staged_plan(), stage=1)
    ids = [p.id for p in op.phases]
    assert "divide_vessel_1" in ids and "separation" not in ids
    assert all(p.table is None for p in op.phases)
    with pytest.raises(InputError, match="--stage 5"):
        derive_operation(_staged_plan(), stage=5)


def test_schedule_cli_on_a_staged_plan(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    from twinsep.casefolder import Case, update_plan

    plan = _staged_plan()
    update_plan(Case(case), separation=plan["separation"])
    assert main(["schedule", str(case), "--roster", str(ROSTER), "--stage", "1"]) == 0
    sched = _schedule(case)
    assert sched["operation"]["stage"] == 1 and not sched["operation"]["final"]
    assert all(a["table"] is None for a in sched["assignments"])
    assert check_schedule(sched, _roster_data()) == []
    shutil.rmtree(case)
