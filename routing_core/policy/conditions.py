"""The condition language, compiled once at load into closures.

A compiled condition is `fn(facts, trace) -> bool`. Each leaf it evaluates appends one
`Leaf` to `trace`: the leaf's decision JSON object (path, op, expected, actual, result, and
`missing` / `note` when they apply), so the decision records every leaf that ran at the cost of
one small dict, and `Decision.to_json` has nothing left to convert. The expected value's JSON
form is worked out once, at load. Paths are checked at load against what a lead can hold
(`prodcut` is an error), and the expected value against the path's type (`gte: 1000000` on a
string path, `eq: retial` on customer_type) where the type is known; where it is not known
(`attributes.*`), a mismatch at run time makes the leaf false with a note.

Semantics (policy-spec.md): a path missing from the lead makes its leaf false for every
operator, `ne` and `not_in` included, and makes `exists: false` true.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from routing_core import jurisdictions
from routing_core.decision import MISSING, PLAIN, Leaf, json_safe, leaf
from routing_core.lead import CUSTOMER_TYPES, Lead, parse_datetime

Trace = list[Leaf]
Condition = Callable[["Facts", Trace], bool]
Getter = Callable[["Facts"], Any]

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "within",
             "matches")
COMBINATORS = ("all", "any", "not")
SCREENING_CHECKS = ("sanctions", "pep", "blocklist")


class ConditionError(Exception):
    """A condition that cannot be compiled; `path` is the YAML path below the condition."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class Facts:
    """What conditions read: the lead, its product's attributes, screening results.

    The jurisdiction's code, country and containing areas are worked out once per decision,
    because most conditions of a real policy start with `jurisdiction within [...]`.
    """

    __slots__ = ("lead", "product", "screening", "code", "country", "subdivision", "areas")

    def __init__(self, lead: Lead, product: Mapping[str, Any] | None,
                 screening: Mapping[str, bool] | None = None) -> None:
        self.lead = lead
        self.product = product
        self.screening = screening or {}
        jurisdiction = lead.jurisdiction
        self.country = jurisdiction.country
        self.subdivision = jurisdiction.subdivision
        self.code = self.subdivision or self.country
        self.areas = jurisdictions.ancestors(self.code)


# --- path types -----------------------------------------------------------------------------
# A path's kind decides which operators and values make sense:
# "str" free text, "lower" lower-case text (assessment outcomes), "enum" a closed set (values
# checked), "number", "bool", "datetime", "jurisdiction", "country", "currency", "any" (unknown
# until run time).
# Getters return None for a value the lead does not have; leaves record that as missing.

class PathType:
    __slots__ = ("kind", "choices")

    def __init__(self, kind: str, choices: frozenset[Any] | None = None) -> None:
        self.kind = kind
        self.choices = choices


def _attr(name: str) -> Getter:
    return operator.attrgetter(f"lead.{name}")


def _mapping_item(name: str, key: str) -> Getter:
    field = operator.attrgetter(f"lead.{name}")

    def get(facts: Facts) -> Any:
        return field(facts).get(key)
    return get


_get_jurisdiction = operator.attrgetter("code")
_get_country = operator.attrgetter("country")
_get_subdivision = operator.attrgetter("subdivision")


def _get_amount(facts: Facts) -> Any:
    money = facts.lead.investable_assets
    return None if money is None else money.amount


def _get_currency(facts: Facts) -> Any:
    money = facts.lead.investable_assets
    return None if money is None else money.currency


_get_assets = operator.attrgetter("lead.investable_assets")


def _product_attr(key: str) -> Getter:
    def get(facts: Facts) -> Any:
        product = facts.product
        return None if product is None else product.get(key)
    return get


def _screening(check: str) -> Getter:
    def get(facts: Facts) -> Any:
        return facts.screening.get(check)
    return get


_TEXT_FIELDS = ("source", "id", "first_name", "last_name", "email", "phone", "company",
                "postcode", "timezone", "stage", "owner", "channel", "modstamp")


class PathCatalog:
    """Which paths a lead can have under one policy, their getters and types."""

    def __init__(self, products: Mapping[str, Mapping[str, Any]]) -> None:
        self.fixed: dict[str, tuple[Getter, PathType]] = {
            name: (_attr(name), PathType("str")) for name in _TEXT_FIELDS}
        self.fixed.update({
            "kind": (_attr("kind"), PathType("enum", frozenset({"person", "organisation"}))),
            "customer_type": (_attr("customer_type"),
                              PathType("enum", frozenset(CUSTOMER_TYPES))),
            "product": (_attr("product"), PathType("enum", frozenset(products))),
            "jurisdiction": (_get_jurisdiction, PathType("jurisdiction")),
            "jurisdiction.country": (_get_country, PathType("country")),
            "jurisdiction.subdivision": (_get_subdivision, PathType("jurisdiction")),
            "investable_assets": (_get_assets, PathType("any")),
            "investable_assets.amount": (_get_amount, PathType("number")),
            "investable_assets.currency": (_get_currency, PathType("currency")),
            "first_contact_at": (_attr("first_contact_at"), PathType("datetime")),
            "timezone_guessed": (_attr("timezone_guessed"), PathType("bool")),
        })
        # product.<attr>: the attribute's type is what the products declare for it.
        self.product_attrs: dict[str, PathType] = {}
        values: dict[str, list[Any]] = {}
        for attrs in products.values():
            for key, value in attrs.items():
                values.setdefault(key, []).append(value)
        for key, seen in values.items():
            if all(isinstance(v, bool) for v in seen):
                self.product_attrs[key] = PathType("bool")
            elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
                self.product_attrs[key] = PathType("number")
            elif all(isinstance(v, str) for v in seen):
                self.product_attrs[key] = PathType("enum", frozenset(seen))
            else:
                self.product_attrs[key] = PathType("any")

    def resolve(self, path: str) -> tuple[Getter, PathType]:
        if not isinstance(path, str) or not path:
            raise ConditionError("`field` must be a dotted path such as customer_type", "field")
        if path in self.fixed:
            return self.fixed[path]
        head, _, rest = path.partition(".")
        if rest and "." not in rest:
            if head == "product":
                if rest not in self.product_attrs:
                    known = ", ".join(sorted(self.product_attrs)) or "none"
                    raise ConditionError(f"products have no attribute {rest!r} "
                                         f"(attributes: {known})", "field")
                return _product_attr(rest), self.product_attrs[rest]
            if head == "assessments":
                return _mapping_item("assessments", rest), PathType("lower")
            if head == "consent":
                return _mapping_item("consent", rest), PathType("bool")
            if head == "attributes":
                return _mapping_item("attributes", rest), PathType("any")
            if head == "screening":
                if rest not in SCREENING_CHECKS:
                    raise ConditionError(f"screening has no check {rest!r} "
                                         f"(checks: {', '.join(SCREENING_CHECKS)})", "field")
                return _screening(rest), PathType("bool")
        roots = sorted({p.split(".")[0] for p in self.fixed} |
                       {"product.<attr>", "assessments.<name>", "consent.<channel>",
                        "attributes.<name>", "screening.<check>"})
        raise ConditionError(f"{path!r} is not a lead path (paths: {', '.join(roots)})",
                             "field")


# --- value checking at load -----------------------------------------------------------------

def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return Decimal(str(value))


def _check_scalar(ptype: PathType, value: Any, op: str, groups: Mapping[str, Sequence[str]]
                  ) -> Any:
    """Return the compiled comparison value for one scalar, or raise ConditionError."""
    kind = ptype.kind
    if isinstance(value, (list, dict)):
        raise ConditionError(f"{op}: expected a single value, not a "
                             f"{'list' if isinstance(value, list) else 'mapping'}", op)
    if kind == "any":
        number = _number(value)
        if number is not None:
            return number
        if isinstance(value, datetime):
            return value
        return value
    if kind == "number":
        number = _number(value)
        if number is None:
            raise ConditionError(f"{op}: {value!r} is not a number, but the path holds "
                                 "numbers", op)
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConditionError(f"{op}: {value!r} is not true or false, but the path holds "
                                 "true/false", op)
        return value
    if kind == "datetime":
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ConditionError(f"{op}: {value} has no time zone (add Z)", op)
            return value
        if isinstance(value, str):  # written in quotes: the same ISO 8601 instant
            try:
                return parse_datetime(value)
            except ValueError:
                pass
        raise ConditionError(f"{op}: {value!r} is not a date-time with a time zone, such as "
                             "2026-01-01T00:00:00Z", op)
    if not isinstance(value, str):
        raise ConditionError(f"{op}: {value!r} is not text, but the path holds text", op)
    if kind == "lower" and value != value.lower():
        # Leads' outcomes are lower-cased (CRMs write Passed, PASSED): "Failed" would never
        # be equal, and a `not` around it would let every failed assessment through.
        raise ConditionError(f"{op}: {value!r} would never match: assessment outcomes are "
                             f"compared in lower case (write {value.lower()!r})", op)
    if kind == "enum" and ptype.choices is not None and value not in ptype.choices:
        raise ConditionError(f"{op}: {value!r} is not a possible value "
                             f"(possible: {', '.join(sorted(map(str, ptype.choices)))})", op)
    if kind in ("jurisdiction", "country"):
        if not jurisdictions.is_valid_code(value):
            raise ConditionError(f"{op}: {value!r} is not an ISO 3166 code such as GB or "
                                 "US-NY", op)
    if kind == "currency" and not (len(value) == 3 and value.isupper()):
        raise ConditionError(f"{op}: {value!r} is not an ISO 4217 code such as GBP", op)
    return value


def expand_jurisdictions(items: Any, groups: Mapping[str, Sequence[str]], where: str
                         ) -> list[str]:
    """Expand `@GROUP` references and check every code; raise ConditionError naming the item."""
    if not isinstance(items, list):
        raise ConditionError("expected a list of jurisdictions such as [GB, US-NY, \"@EU\"]",
                             where)
    out: list[str] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]" if where else f"[{i}]"
        if not isinstance(item, str):
            raise ConditionError(f"{item!r} is not a jurisdiction code", at)
        if item.startswith("@"):
            name = item[1:]
            if name not in groups:
                raise ConditionError(f"unknown jurisdiction group {item!r} (groups: "
                                     f"{', '.join('@' + g for g in sorted(groups))})", at)
            out.extend(groups[name])
        elif jurisdictions.is_valid_code(item):
            out.append(item)
        else:
            raise ConditionError(f"{item!r} is not an ISO 3166 code such as GB or US-NY "
                                 "(or a group such as \"@EU\")", at)
    return out


# --- compiling ------------------------------------------------------------------------------

def _type_name(value: Any) -> str:
    return type(value).__name__


def _exact(value: Any) -> Any:
    """A float from lead JSON, compared as the decimal written (0.1, not the binary fraction
    just above it): policy numbers are Decimal, and Decimal("0.1") < 0.1 in Python."""
    return Decimal(repr(value)) if type(value) is float else value


def _value_kind(value: Any) -> str:
    """What a value is, for comparing on paths whose type is known only at run time
    (`attributes.*`): 1 is not true, and "10" is not 10."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "date-time"
    return _type_name(value)


def _mismatch(actual: Any, wanted: Sequence[str]) -> str:
    return f"type mismatch: {_value_kind(actual)} against {' or '.join(sorted(wanted))}"


# Lead paths that hold personal data. A leaf on one records whether it held, never the value:
# the decision is stored in clear in a ledger that keeps it for good, and a person's name,
# email, phone, company or postcode would outlive their erasure there (their sealed copy does
# not). The leaf says `actual: null, withheld: true`.
PERSONAL_PATHS = frozenset({"first_name", "last_name", "email", "phone", "company", "postcode"})


def _compile_leaf(spec: Mapping[str, Any], catalog: PathCatalog,
                  groups: Mapping[str, Sequence[str]]) -> Condition:
    condition = _compile_plain_leaf(spec, catalog, groups)
    if spec.get("field") not in PERSONAL_PATHS:
        return condition

    def withholding(facts: Facts, trace: Trace) -> bool:
        result = condition(facts, trace)
        recorded = trace[-1]  # every leaf appends exactly one entry
        if recorded["actual"] is not None:
            trace[-1] = {**recorded, "actual": None, "withheld": True}
        return result
    return withholding


def _compile_plain_leaf(spec: Mapping[str, Any], catalog: PathCatalog,
                        groups: Mapping[str, Sequence[str]]) -> Condition:
    unknown = set(spec) - {"field", *OPERATORS}
    if unknown:
        raise ConditionError(f"unknown key {sorted(unknown)[0]!r} in a condition (operators: "
                             f"{', '.join(OPERATORS)}; combinators: all, any, not)",
                             sorted(unknown)[0])
    ops = [k for k in spec if k in OPERATORS]
    if len(ops) != 1:
        raise ConditionError(f"a condition leaf needs exactly one operator, found "
                             f"{len(ops)} ({', '.join(ops) or 'none'})")
    if "field" not in spec:
        raise ConditionError(f"a condition leaf needs `field:`, the lead path that {ops[0]} "
                             "tests (such as {field: customer_type, eq: retail})")
    path = spec["field"]
    op = ops[0]
    expected = spec[op]
    get, ptype = catalog.resolve(path)
    # The expected value as recorded: converted once here. A list is copied into each leaf,
    # so that no decision's JSON shares a list with the policy or with another decision.
    shown = json_safe(expected)

    if op == "exists":
        if not isinstance(expected, bool):
            raise ConditionError("exists: must be true or false", op)
        want = expected

        def exists(facts: Facts, trace: Trace) -> bool:
            actual = get(facts)
            result = (actual is not None) is want
            trace.append(leaf(path, op, want, MISSING if actual is None else actual, result))
            return result
        return exists

    if op == "within":
        if ptype.kind not in ("jurisdiction", "country"):
            raise ConditionError(f"within: applies to jurisdiction paths, not {path!r}", op)
        disjoint = frozenset(expand_jurisdictions(expected, groups, op)).isdisjoint
        if path == "jurisdiction":  # the common case: one set operation on prepared areas
            def within_lead(facts: Facts, trace: Trace) -> bool:
                result = not disjoint(facts.areas)
                # leaf(), inlined: the most frequent leaf of a real policy (code is never None)
                trace.append({"path": path, "op": op, "expected": shown.copy(),
                              "actual": facts.code, "result": result})
                return result
            return within_lead

        def within(facts: Facts, trace: Trace) -> bool:
            actual = get(facts)
            if actual is None:
                trace.append(leaf(path, op, shown.copy(), MISSING, False))
                return False
            result = not disjoint(jurisdictions.ancestors(actual))
            trace.append(leaf(path, op, shown.copy(), actual, result))
            return result
        return within

    if op == "matches":
        if ptype.kind not in ("str", "lower", "enum", "any", "jurisdiction", "country",
                              "currency"):
            raise ConditionError(f"matches: applies to text paths, not {path!r}", op)
        if not isinstance(expected, str):
            raise ConditionError("matches: must be a regular expression in quotes", op)
        try:
            # assessment outcomes are lower-cased: "^Failed$" must still match "failed"
            pattern = re.compile(expected, re.IGNORECASE if ptype.kind == "lower" else 0)
        except re.error as exc:
            raise ConditionError(f"matches: invalid regular expression: {exc}", op) from exc
        fullmatch = pattern.fullmatch

        def matches(facts: Facts, trace: Trace) -> bool:
            actual = get(facts)
            if actual is None:
                trace.append(leaf(path, op, shown, MISSING, False))
                return False
            if not isinstance(actual, str):
                trace.append(leaf(path, op, shown, actual, False,
                                  f"type mismatch: {_type_name(actual)} is not text"))
                return False
            result = fullmatch(actual) is not None
            trace.append(leaf(path, op, shown, actual, result))
            return result
        return matches

    if op in ("in", "not_in"):
        if not isinstance(expected, list):
            raise ConditionError(f"{op}: expected a list of values", op)
        values: list[Any] = []
        for i, item in enumerate(expected):
            try:
                values.append(_check_scalar(ptype, item, op, groups))
            except ConditionError as exc:
                raise ConditionError(exc.message, f"{op}[{i}]") from exc
        negate = op == "not_in"
        if ptype.kind == "any":  # attributes.*: a value of another kind is no member
            by_kind: dict[str, set[Any]] = {}
            for item in values:
                by_kind.setdefault(_value_kind(item), set()).add(item)
            kinds = {k: frozenset(v) for k, v in by_kind.items()}

            def member_any(facts: Facts, trace: Trace) -> bool:
                actual = get(facts)
                if actual is None:
                    trace.append(leaf(path, op, shown.copy(), MISSING, False))
                    return False
                same = kinds.get(_value_kind(actual))
                if same is None:
                    trace.append(leaf(path, op, shown.copy(), actual, False,
                                      _mismatch(actual, list(kinds))))
                    return False
                result = (_exact(actual) in same) is not negate
                trace.append(leaf(path, op, shown.copy(), actual, result))
                return result
            return member_any
        choices = frozenset(values)

        def member(facts: Facts, trace: Trace) -> bool:
            actual = get(facts)
            if actual is None:
                trace.append(leaf(path, op, shown.copy(), MISSING, False))
                return False
            try:
                result = (_exact(actual) in choices) is not negate
            except TypeError:  # unhashable value from attributes
                trace.append(leaf(path, op, shown.copy(), actual, False, "type mismatch"))
                return False
            if type(actual) in PLAIN:  # leaf(), inlined for the common case
                trace.append({"path": path, "op": op, "expected": shown.copy(),
                              "actual": actual, "result": result})
            else:
                trace.append(leaf(path, op, shown.copy(), actual, result))
            return result
        return member

    if isinstance(expected, (list, dict)):
        raise ConditionError(f"{op}: expected a single value, not a "
                             f"{'list' if isinstance(expected, list) else 'mapping'}", op)
    if op in ("gt", "gte", "lt", "lte"):
        if ptype.kind not in ("number", "datetime", "any"):
            raise ConditionError(f"{op}: compares numbers or times, but {path!r} holds "
                                 f"{ptype.kind} values", op)
        if ptype.kind == "any" and isinstance(expected, (str, bool, date)) and not isinstance(
                expected, datetime):
            raise ConditionError(f"{op}: {expected!r} is not a number or date-time", op)
    value = _check_scalar(ptype, expected, op, groups)

    if op in ("eq", "ne") and ptype.kind == "any":  # attributes.*: compare like with like
        negate = op == "ne"
        value_kind = _value_kind(value)

        def equal_any(facts: Facts, trace: Trace) -> bool:
            actual = get(facts)
            if actual is None:
                trace.append(leaf(path, op, shown, MISSING, False))
                return False
            if _value_kind(actual) != value_kind:
                trace.append(leaf(path, op, shown, actual, False,
                                  _mismatch(actual, [value_kind])))
                return False
            result = (_exact(actual) == value) is not negate
            trace.append(leaf(path, op, shown, actual, result))
            return result
        return equal_any

    if op in ("eq", "ne"):
        negate = op == "ne"

        def equal(facts: Facts, trace: Trace) -> bool:
            actual = get(facts)
            if actual is None:
                trace.append(leaf(path, op, shown, MISSING, False))
                return False
            result = (actual == value) is not negate  # typed paths hold no float
            if type(actual) in PLAIN:  # leaf(), inlined for the common case
                trace.append({"path": path, "op": op, "expected": shown, "actual": actual,
                              "result": result})
            else:
                trace.append(leaf(path, op, shown, actual, result))
            return result
        return equal

    compare: Callable[[Any, Any], Any] = {
        "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[op]

    def ordered(facts: Facts, trace: Trace) -> bool:
        actual = get(facts)
        if actual is None:
            trace.append(leaf(path, op, shown, MISSING, False))
            return False
        try:
            if isinstance(actual, bool) or isinstance(actual, str):
                raise TypeError
            result = bool(compare(_exact(actual), value))
        except TypeError:
            trace.append(leaf(path, op, shown, actual, False,
                              f"type mismatch: {_type_name(actual)} against "
                              f"{_type_name(expected)}"))
            return False
        trace.append(leaf(path, op, shown, actual, result))
        return result
    return ordered


def compile_condition(spec: Any, catalog: PathCatalog, groups: Mapping[str, Sequence[str]]
                      ) -> Condition:
    """Compile one condition; ConditionError.path is relative to `spec`."""
    if not isinstance(spec, Mapping):
        raise ConditionError("a condition is a mapping: {all: [...]}, {any: [...]}, "
                             "{not: ...} or {field: PATH, OP: VALUE}")
    combinators = [k for k in spec if k in COMBINATORS]
    if not combinators:
        return _compile_leaf(spec, catalog, groups)
    if len(spec) != 1:
        extra = sorted(k for k in spec if k != combinators[0])[0]
        raise ConditionError(f"{combinators[0]!r} cannot be combined with {extra!r} in one "
                             "mapping; nest them", extra)
    key = combinators[0]
    body = spec[key]
    if key == "not":
        try:
            inner = compile_condition(body, catalog, groups)
        except ConditionError as exc:
            raise ConditionError(exc.message, _join("not", exc.path)) from exc

        def negation(facts: Facts, trace: Trace) -> bool:
            return not inner(facts, trace)
        return negation
    if not isinstance(body, list):
        raise ConditionError(f"{key}: expected a list of conditions", key)
    parts: list[Condition] = []
    for i, item in enumerate(body):
        try:
            parts.append(compile_condition(item, catalog, groups))
        except ConditionError as exc:
            raise ConditionError(exc.message, _join(f"{key}[{i}]", exc.path)) from exc
    members = tuple(parts)
    # Short lists are unrolled: most rules are an `all` of two to four leaves.
    if key == "all" and len(members) == 2:
        a, b = members
        return lambda facts, trace: a(facts, trace) and b(facts, trace)
    if key == "all" and len(members) == 3:
        a, b, c = members
        return lambda facts, trace: a(facts, trace) and b(facts, trace) and c(facts, trace)
    if key == "all" and len(members) == 4:
        a, b, c, d = members
        return lambda facts, trace: (a(facts, trace) and b(facts, trace) and c(facts, trace)
                                     and d(facts, trace))
    if key == "all":
        def every(facts: Facts, trace: Trace) -> bool:
            for part in members:
                if not part(facts, trace):
                    return False
            return True
        return every

    def some(facts: Facts, trace: Trace) -> bool:
        for part in members:
            if part(facts, trace):
                return True
        return False
    return some


def _join(head: str, tail: str) -> str:
    if not tail:
        return head
    return head + tail if tail.startswith("[") else f"{head}.{tail}"
