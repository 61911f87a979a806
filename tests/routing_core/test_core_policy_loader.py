"""Loading policies: strict schema, errors with file, line and YAML path, folders, digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing_core.policy import PolicyError, load_policy

HERE = Path(__file__).parent
BASIC = HERE / "policies" / "basic.yaml"
EXAMPLE = HERE.parent.parent / "examples" / "policy"

MINIMAL = """\
policy: { id: p, version: "1" }
firm:
  name: F
  authorisations:
    - { entity: E, regulator: FCA, jurisdictions: [GB, NO] }
products:
  saver: { complexity: simple, risk: 1 }
teams:
  t1:
    name: Team 1
    licenses:
      - id: L1
        regulator: FCA
        jurisdictions: [GB]
        products: [saver]
        customer_types: [retail]
        valid_from: 2024-01-01
    members:
      - { id: a, name: A }
rules:
  - id: r1
    when: { field: product, eq: saver }
    route_to: [t1]
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    return info.value


def test_minimal_policy_loads_with_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, MINIMAL))
    team = policy.raw["teams"]["t1"]
    assert team["assignment"] == "round_robin"
    assert team["requires_individual_license"] is False
    member = team["members"][0]
    assert (member["weight"], member["available"], member["max_per_day"], member["licenses"]) == (
        1, True, None, [])
    assert team["licenses"][0]["valid_until"] is None
    assert policy.raw["rules"][0]["team_choice"] == "priority"
    assert policy.raw["gates"] == [] and policy.raw["tests"] == []
    assert policy.digest.startswith("sha256:") and len(policy.digest) == 71
    assert any("screening" in w for w in policy.warnings)
    # NO is Norway here, not YAML 1.1's false
    assert policy.raw["firm"]["authorisations"][0]["jurisdictions"] == ["GB", "NO"]


@pytest.mark.parametrize(("old", "new", "path", "line", "fragment"), [
    ("      - { id: a, name: A }", "      - { id: a, name: A, wieght: 2 }",
     "teams.t1.members[0].wieght", 19, "unknown key 'wieght'"),
    ("        products: [saver]", "        products: [saver, svaer]",
     "teams.t1.licenses[0].products[1]", 15, "unknown product 'svaer'"),
    ("    route_to: [t1]", "    route_to: [t2]", "rules[0].route_to[0]", 23, "unknown team 't2'"),
    ("    when: { field: product, eq: saver }", "    when: { field: prodcut, eq: saver }",
     "rules[0].when.field", 22, "not a lead path"),
    ("        valid_from: 2024-01-01", "        valid_from: 2024-01-01\n"
     "        valid_until: 2023-01-01", "teams.t1.licenses[0].valid_until", 18, "before"),
    ("      - { id: a, name: A }", "      - { id: a, name: A, max_per_day: -1 }",
     "teams.t1.members[0].max_per_day", 19, "greater than or equal to 0"),
    ("      - { id: a, name: A }", "      - { id: a, name: A }\n      - { id: a, name: B }",
     "teams.t1.members[1].id", 20, "duplicate member 'a'"),
    ("        customer_types: [retail]", "        customer_types: [retail, whales]",
     "teams.t1.licenses[0].customer_types[1]", 16, "not a customer type"),
    ("        jurisdictions: [GB]", "        jurisdictions: [\"@EUROPE\"]",
     "teams.t1.licenses[0].jurisdictions[0]", 14, "unknown jurisdiction group"),
    ('policy: { id: p, version: "1" }', "policy: { id: p }", "policy.version", 1,
     "required key 'version' is missing"),
    ("    name: Team 1", "    name: Team 1\n    assignment: random",
     "teams.t1.assignment", 11, "'random' is not allowed"),
    ("    when: { field: product, eq: saver }",
     "    when: { field: investable_assets.amount, gte: \"lots\" }",
     "rules[0].when.gte", 22, "not a number"),
    ('policy: { id: p, version: "1" }', 'policy: { id: p, version: "1", timezone: Mars/Base }',
     "policy.timezone", 1, "not an IANA time zone"),
    ("    route_to: [t1]", '    route_to: [t1]\nconduct:\n  - id: c1\n    when: { field: product, '
     'eq: saver }\n    contact_window: { start: "8:00", end: "21:00" }',
     "conduct[0].contact_window.start", 27, 'not a time of day written HH:MM, such as "08:00"'),
    ("    route_to: [t1]", '    route_to: [t1]\nconduct:\n  - id: c1\n    when: { field: product, '
     'eq: saver }\n    contact_window: { start: "08:00", end: "24:30" }',
     "conduct[0].contact_window.end", 27, "'24:30' is not a time of day"),
    ("    when: { field: product, eq: saver }", "    when: { eq: saver }",
     "rules[0].when", 22, "needs `field:`"),
    ('policy: { id: p, version: "1" }', 'policy: { id: p, version: "1", effective_from: '
     '2026-11-01 }', "policy.effective_from", 1, "2026-11-01 is a date; write the instant"),
    ('policy: { id: p, version: "1" }', 'policy: { id: p, version: "1", effective_from: '
     '2026-11-01T00:00:00 }', "policy.effective_from", 1, "has no time zone (add Z"),
    ("    route_to: [t1]", "    route_to: [t1]\ntests:\n  - name: n\n    at: 2026-07-01\n"
     "    lead: { jurisdiction: GB }\n    expect: { outcome: refused }",
     "tests[0].at", 26, "2026-07-01 is a date"),
    ("        valid_from: 2024-01-01", "        valid_from: 2024-13-01",
     "teams.t1.licenses[0].valid_from", 17, "'2024-13-01' is not a date or time that exists"),
    # a key missing from a block mapping points at that mapping's own key (`  t1:`), not at
    # its first child on the next line
    ("    members:\n      - { id: a, name: A }\n", "", "teams.t1.members", 9,
     "required key 'members' is missing"),
])
def test_errors_name_file_line_and_path(tmp_path: Path, old: str, new: str, path: str,
                                        line: int, fragment: str) -> None:
    assert old in MINIMAL
    error = error_of(tmp_path, MINIMAL.replace(old, new))
    first = error.problems[0]
    assert f"policy.yaml:{line}: {path}: " in first, first
    assert fragment in first
    assert "\n" not in str(error)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = (MINIMAL.replace("products: [saver]", "products: [nope]")
            .replace("route_to: [t1]", "route_to: [t9]")
            .replace("{ id: a, name: A }", "{ id: a, name: A, colour: red }"))
    error = error_of(tmp_path, text)
    assert len(error.problems) == 1  # schema errors stop before cross-references...
    error = error_of(tmp_path, text.replace(", colour: red", ""))
    assert len(error.problems) == 2  # ...which are all reported together
    assert "and 1 more problem" in str(error)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    text = MINIMAL.replace("  saver: { complexity: simple, risk: 1 }",
                           "  saver: { complexity: simple, risk: 1 }\n  saver: { risk: 2 }")
    error = error_of(tmp_path, text)
    assert "policy.yaml:8: products.saver: duplicate key 'saver'" in error.problems[0]


def test_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    error = error_of(tmp_path, MINIMAL + "  - [unclosed\n")
    assert "not valid YAML" in str(error) and "policy.yaml:" in str(error)
    with pytest.raises(PolicyError, match="no such file"):
        load_policy(tmp_path / "absent.yaml")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(write(tmp_path, "- a\n- b\n"))


def test_required_sections(tmp_path: Path) -> None:
    error = error_of(tmp_path, "policy: { id: p, version: '1' }\n")
    assert {"firm", "products", "teams", "rules"} <= {
        p.split("required key '")[1].split("'")[0] for p in error.problems if "required" in p}


def test_folder_merges_in_name_order_with_locations(tmp_path: Path) -> None:
    head, rules = MINIMAL.split("rules:\n")
    folder = tmp_path / "pol"
    folder.mkdir()
    write(folder, head, "00-main.yaml")
    write(folder, "rules:\n" + rules, "10-rules.yaml")
    write(folder, "rules:\n  - id: r2\n    when: { field: prodct, eq: saver }\n"
                  "    route_to: [t1]\n", "20-more.yaml")
    with pytest.raises(PolicyError) as info:
        load_policy(folder)
    assert "20-more.yaml:3: rules[1].when.field" in info.value.problems[0]
    (folder / "20-more.yaml").write_text(
        "rules:\n  - id: r2\n    when: { field: product, eq: saver }\n    route_to: [t1]\n")
    merged = load_policy(folder)
    assert [r.id for r in merged.rules] == ["r1", "r2"]
    single = load_policy(write(tmp_path, MINIMAL + "  - id: r2\n    when: { field: product, eq: "
                               "saver }\n    route_to: [t1]\n"))
    assert merged.digest == single.digest


def test_folder_reads_upper_case_suffixes_and_refuses_yaml_it_would_not_read(
        tmp_path: Path) -> None:
    # 40-gates.YAML was skipped without a word: the policy loaded, and routed, with no gates.
    head, rules = MINIMAL.split("rules:\n")
    folder = tmp_path / "pol"
    folder.mkdir()
    write(folder, head, "00-main.yaml")
    write(folder, "rules:\n" + rules, "10-rules.YAML")
    write(folder, "just notes", "README.md")  # not YAML: not read, not an error
    assert [r.id for r in load_policy(folder).rules] == ["r1"]
    (folder / "lists").mkdir()
    write(folder / "lists", "name\n", "sdn.csv")
    assert [r.id for r in load_policy(folder).rules] == ["r1"]
    write(folder / "lists", "gates: []\n", "gates.yml")
    with pytest.raises(PolicyError, match="lists/gates.yml is in a subfolder"):
        load_policy(folder)


def test_folder_rejects_a_block_defined_twice(tmp_path: Path) -> None:
    folder = tmp_path / "pol"
    folder.mkdir()
    write(folder, MINIMAL, "a.yaml")
    write(folder, "teams:\n  t1: { name: again, members: [{id: z, name: Z}] }\n", "b.yaml")
    with pytest.raises(PolicyError, match="b.yaml:2: teams.t1: 't1' is defined in both"):
        load_policy(folder)
    (folder / "b.yaml").write_text("firm: { name: X, authorisations: [] }\n")
    with pytest.raises(PolicyError, match="already defined in"):
        load_policy(folder)


def test_policy_tests_expectations_are_checked(tmp_path: Path) -> None:
    text = MINIMAL + ("tests:\n  - name: x\n    lead: { jurisdiction: GB }\n"
                      "    expect: { outcome: refused, reason: no_such_reason, team: t1 }\n")
    error = error_of(tmp_path, text)
    joined = "\n".join(error.problems)
    assert "tests[0].expect.reason" in joined and "a refused lead has no team" in joined


def test_example_policy_loads() -> None:
    if not EXAMPLE.exists():
        pytest.skip("examples/policy not merged into this branch")
    policy = load_policy(EXAMPLE)
    assert len(policy.teams) >= 12 and len(policy.tests) >= 25


def test_builtin_groups_expand(tmp_path: Path) -> None:
    text = MINIMAL.replace("jurisdictions: [GB, NO]", "jurisdictions: [GB, \"@EEA\", \"@GCC\"]")
    policy = load_policy(write(tmp_path, text))
    codes = policy.firm_jurisdictions.codes
    assert {"DE", "NO", "IS", "LI", "AE", "SA", "GB"} <= codes and "CH" not in codes


def test_anchors_under_x_keys_are_reusable_and_not_part_of_the_digest(tmp_path: Path) -> None:
    text = MINIMAL.replace("teams:\n", "x-rep: &rep { weight: 3, max_per_day: 7 }\nteams:\n")
    text = text.replace("      - { id: a, name: A }", "      - { <<: *rep, id: a, name: A }")
    policy = load_policy(write(tmp_path, text))
    member = policy.raw["teams"]["t1"]["members"][0]
    assert (member["weight"], member["max_per_day"]) == (3, 7)
    assert "x-rep" not in policy.raw
    inline = load_policy(write(tmp_path, MINIMAL.replace(
        "      - { id: a, name: A }", "      - { id: a, name: A, weight: 3, max_per_day: 7 }"),
        "inline.yaml"))
    assert inline.digest == policy.digest


def test_a_value_of_no_allowed_type_is_one_problem(tmp_path: Path) -> None:
    error = error_of(tmp_path, MINIMAL.replace("  saver: { complexity: simple, risk: 1 }",
                                               "  saver: { complexity: [simple] }"))
    assert error.problems == [
        f"{tmp_path / 'policy.yaml'}:7: products.saver.complexity: Input should be a valid "
        "string, integer, number or boolean (got a list or mapping)"]


def test_a_webhook_url_is_checked_without_being_echoed(tmp_path: Path) -> None:
    review = "review:\n  notify:\n    - { kind: webhook, url: %s }\n"
    for bad in ('"ftp://hooks.example.com/T1/s3cr3tXYZ"', '"hooks.example.com/s3cr3tXYZ"',
                '"https:///s3cr3tXYZ"'):
        error = error_of(tmp_path, MINIMAL + review % bad)
        assert "policy.yaml:26: review.notify[0].url: not an http:// or https:// URL with a " \
            "host" in error.problems[0], error.problems
        assert "s3cr3tXYZ" not in str(error)
    error = error_of(tmp_path, MINIMAL + review % '{ env: "not a name" }')
    assert "review.notify[0].url" in error.problems[0]
    policy = load_policy(write(tmp_path, MINIMAL + review % "{ env: LG_HOOK }"))
    assert policy.review.notify == ({"kind": "webhook", "url": {"env": "LG_HOOK"}},)
    policy = load_policy(write(tmp_path, MINIMAL + review % '"https://hooks.example.com/T1"'))
    assert policy.review.notify[0]["url"] == "https://hooks.example.com/T1"


def test_a_plain_http_webhook_to_a_remote_host_is_refused_with_file_line_and_path(
        tmp_path: Path) -> None:
    # the notification, and a Slack or Teams hook's secret path, would cross the network in clear
    review = "review:\n  notify:\n    - { kind: webhook, url: %s }\n"
    for bad in ('"http://hooks.example.com/T1/s3cr3tXYZ"', '"HTTP://10.1.2.3:8080/s3cr3tXYZ"'):
        error = error_of(tmp_path, MINIMAL + review % bad)
        assert error.problems == [
            f"{tmp_path / 'policy.yaml'}:26: review.notify[0].url: plain http:// to a host "
            "that is not loopback would send the notification unencrypted (fix: use https://; "
            "plain http:// is accepted only for 127.0.0.1, ::1 or localhost)"], error.problems
        assert "s3cr3tXYZ" not in str(error)
    for good in ('"http://127.0.0.1:9000/hook"', '"http://[::1]/hook"', '"http://localhost/h"'):
        policy = load_policy(write(tmp_path, MINIMAL + review % good))
        assert policy.review.notify[0]["url"] == good.strip('"')


def test_a_contact_window_may_end_at_midnight(tmp_path: Path) -> None:
    text = MINIMAL + ("conduct:\n  - id: c1\n    when: { field: product, eq: saver }\n"
                      '    contact_window: { start: "08:00", end: "24:00" }\n')
    window = load_policy(write(tmp_path, text)).conduct[0].window
    assert window is not None and window.end.hour == 23 and window.end.minute == 59


SCREENED = MINIMAL + """\
screening:
  lists:
    - { id: sanctions, format: ofac_sdn_csv, path: sdn.csv }
    - { id: sanctions, format: opensanction_simple, path: uk.csv }
    - { id: pep, format: csv, path: other.csv }
  pep: { format: opensanctions_simple, path: peps.csv }
review:
  officers:
    - { id: jane, name: Jane A }
    - { id: jane, name: Jane B }
"""


def test_screening_lists_and_officers_are_checked_at_load(tmp_path: Path) -> None:
    problems = error_of(tmp_path, SCREENED).problems
    # the format is a shape error, reported first; ids are checked once the shape is right
    assert len(problems) == 1 and "screening.lists[1].format: 'opensanction_simple' is not " \
        "allowed" in problems[0] and "opensanctions_simple" in problems[0]
    problems = error_of(tmp_path, SCREENED.replace("opensanction_simple",
                                                   "opensanctions_simple")).problems
    assert [p.split(": ", 2)[1:] for p in problems] == [
        ["screening.lists[1].id", "duplicate screening list 'sanctions' (fix: give each one "
         "its own id)"],
        ["screening.lists[2].id", "'pep' is the id decisions record for screening.pep (fix: "
         "give the list another id)"],
        ["review.officers[1].id", "duplicate officer 'jane' (fix: give each one its own id)"]]


def test_every_bad_code_of_a_jurisdiction_list_is_reported(tmp_path: Path) -> None:
    problems = error_of(tmp_path, MINIMAL.replace("jurisdictions: [GB]",
                                                  "jurisdictions: [GB, UK, US-NY, EL]")).problems
    assert [p.split(": ")[1] for p in problems] == [
        "teams.t1.licenses[0].jurisdictions[1]", "teams.t1.licenses[0].jurisdictions[3]"]


@pytest.mark.parametrize(("old", "new", "fragment"), [
    # each of these loaded: 0 as 1970-01-01, "no" as false, "3" as 3
    ("valid_from: 2024-01-01", "valid_from: 0", "valid_from: 0 is not a day"),
    ("valid_from: 2024-01-01", "valid_from: 2024-01-01T00:00:00Z", "is a date-time"),
    ("{ id: a, name: A }", "{ id: a, name: A, available: \"no\" }", "available: Input should "
                                                                    "be a valid boolean"),
    ("{ id: a, name: A }", "{ id: a, name: A, weight: \"3\" }", "weight: Input should be a "
                                                                "valid integer"),
])
def test_values_are_not_coerced_into_another_type(tmp_path: Path, old: str, new: str,
                                                  fragment: str) -> None:
    assert old in MINIMAL
    error = error_of(tmp_path, MINIMAL.replace(old, new))
    assert len(error.problems) == 1 and fragment in error.problems[0], error.problems


def test_a_day_or_an_instant_in_quotes_is_the_same_value(tmp_path: Path) -> None:
    plain = load_policy(write(tmp_path, MINIMAL))
    quoted = load_policy(write(tmp_path, MINIMAL.replace(
        "valid_from: 2024-01-01", 'valid_from: "2024-01-01"').replace(
        'version: "1" }', 'version: "1", effective_from: "2024-01-01T00:00:00Z" }')))
    assert quoted.teams["t1"].licenses[0].valid_from == plain.teams["t1"].licenses[0].valid_from
    assert quoted.effective_from is not None and quoted.effective_from.tzinfo is not None
