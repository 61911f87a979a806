"""The SOQL subset leadgate uses, parsed and compiled to Python predicates.

Supported: SELECT fields | COUNT() FROM object [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]; conditions with = != <> < <= > >= LIKE IN
NOT IN, AND, OR, NOT and parentheses; string, number, boolean, null, date and dateTime
literals. Anything else is refused with the error Salesforce uses (MALFORMED_QUERY,
INVALID_FIELD, INVALID_TYPE), never answered with a silently different result.
SOQL semantics kept: field and object names are case-insensitive, text comparisons are
case-insensitive, `!=` and NOT IN match nulls, AND and OR cannot be mixed without parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .schema import SfField
from .wire import parse_datetime_ms


class SoqlError(Exception):
    """A query Salesforce would reject: carries errorCode and Salesforce's message text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*(?::\d+)?)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'",
            "\\": "\\"}
_LIKE_ESCAPES = {"_": "\\_", "%": "\\%"}
_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc",
             "desc", "nulls", "first", "last", "limit", "offset", "null", "true", "false",
             "group", "having", "for", "update", "with", "using", "typeof", "includes",
             "excludes"}


@dataclass
class Tok:
    kind: str
    text: str
    pos: int
    value: Any = None


@dataclass
class Query:
    sobject: str
    fields: list[str]  # canonical names, in SELECT order; empty for COUNT()
    count_only: bool
    where: Callable[[Any], bool] | None
    order: list[tuple[str, bool, bool]]  # (field, descending, nulls_first)
    limit: int | None
    offset: int
    floors: dict[str, int]  # datetime field -> ms: no match has a smaller value
    text: str
    ids: frozenset[str] | None = None  # every match has one of these Ids (15-char form)


class Source:
    """What the compiler needs of an object: its fields and a value accessor per field."""

    def __init__(self, name: str, fields: Sequence[SfField]) -> None:
        self.name = name
        self.fields = {f.name.lower(): f for f in fields}

    def accessor(self, field: str) -> Callable[[Any], Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def sort_accessor(self, field: str) -> Callable[[Any], Any]:
        """Values to sort by (a table may know a cheaper equivalent, e.g. its key for Id)."""
        return self.accessor(field)


def _where(text: str, pos: int) -> str:
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start: None if line_end < 0 else line_end]
    col = pos - line_start + 1
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n"


def _tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", _where(text, pos)
                            + f"unexpected token: '{text[pos]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            tok = Tok(kind, m.group(), pos)
            if kind == "string":
                tok.value = _unescape(text, m.group(), pos)
            toks.append(tok)
        pos = m.end()
    toks.append(Tok("eof", "<EOF>", len(text)))
    return toks


def _unescape(text: str, raw: str, pos: int) -> str:
    out: list[str] = []
    body = raw[1:-1]
    k = 0
    while k < len(body):
        c = body[k]
        if c == "\\":
            nxt = body[k + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in _LIKE_ESCAPES:
                out.append(_LIKE_ESCAPES[nxt])  # kept escaped: only LIKE gives it meaning
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[k + 2:k + 6] or ""):
                out.append(chr(int(body[k + 2:k + 6], 16)))
                k += 4
            else:
                raise SoqlError("MALFORMED_QUERY", _where(text, pos + k + 1)
                                + "Invalid string literal '" + raw + "'. Illegal character "
                                "sequence '\\" + nxt + "' in string literal.")
            k += 2
        else:
            out.append(c)
            k += 1
    return "".join(out)


_TEXT_TYPES = {"string", "email", "phone", "picklist", "textarea", "url", "multipicklist"}
_TYPE_NAMES = {"datetime": "dateTime", "date": "date", "boolean": "boolean",
               "currency": "double", "double": "double", "int": "int"}


class _Parser:
    def __init__(self, text: str, sources: dict[str, Source]) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.k = 0
        self.sources = sources
        self.src: Source | None = None

    # -- token helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.k]

    def kw(self, *words: str) -> bool:
        t = self.tok
        return t.kind == "ident" and t.text.lower() in words

    def take_kw(self, word: str) -> None:
        if not self.kw(word):
            self.unexpected()
        self.k += 1

    def unexpected(self, tok: Tok | None = None, note: str = "") -> None:
        t = tok or self.tok
        raise SoqlError("MALFORMED_QUERY", _where(self.text, t.pos)
                        + f"unexpected token: {t.text if t.kind == 'eof' else repr(t.text)}"
                        + note)

    # -- grammar
    def parse(self) -> Query:
        self.take_kw("select")
        select: list[Tok] = []
        count_only = False
        if self.kw("count") and self.toks[self.k + 1].text == "(":
            if self.toks[self.k + 2].text != ")":
                self.unexpected(self.toks[self.k + 2], " (the sandbox supports COUNT() only)")
            count_only = True
            self.k += 3
        else:
            while True:
                t = self.tok
                if t.kind != "ident" or t.text.lower() in ("from",):
                    self.unexpected()
                if self.toks[self.k + 1].text == "(":
                    self.unexpected(t, " (functions and subqueries are not supported by the"
                                       " leadgate sandbox)")
                select.append(t)
                self.k += 1
                if self.tok.text == ",":
                    self.k += 1
                    continue
                break
        self.take_kw("from")
        obj = self.tok
        if obj.kind != "ident":
            self.unexpected()
        src = self.sources.get(obj.text.lower())
        if src is None:
            raise SoqlError("INVALID_TYPE", _where(self.text, obj.pos)
                            + f"sObject type '{obj.text}' is not supported. If you are "
                            "attempting to use a custom object, be sure to append the '__c' "
                            "after the entity name. Please reference your WSDL or the describe "
                            "call for the appropriate names.")
        self.src = src
        self.k += 1
        fields: list[str] = []
        seen: set[str] = set()
        for t in select:
            f = self.field(t)
            if f.name in seen:
                raise SoqlError("MALFORMED_QUERY", _where(self.text, t.pos)
                                + f"duplicate field selected: {f.name}")
            seen.add(f.name)
            fields.append(f.name)
        where = None
        bound = _NO_BOUND
        if self.kw("where"):
            self.k += 1
            where, bound = self.condition()
        order: list[tuple[str, bool, bool]] = []
        if self.kw("order"):
            self.k += 1
            self.take_kw("by")
            while True:
                f = self.field(self.tok, purpose="sorted")
                self.k += 1
                desc = False
                if self.kw("asc", "desc"):
                    desc = self.tok.text.lower() == "desc"
                    self.k += 1
                nulls_first = not desc
                if self.kw("nulls"):
                    self.k += 1
                    if not self.kw("first", "last"):
                        self.unexpected()
                    nulls_first = self.tok.text.lower() == "first"
                    self.k += 1
                order.append((f.name, desc, nulls_first))
                if self.tok.text == ",":
                    self.k += 1
                    continue
                break
        limit = None
        offset = 0
        if self.kw("limit"):
            self.k += 1
            limit = self.integer()
        if self.kw("offset"):
            self.k += 1
            tok = self.tok
            offset = self.integer()
            if offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", _where(self.text, tok.pos)
                                + "Maximum SOQL offset allowed is 2000")
        if self.tok.kind != "eof":
            self.unexpected()
        return Query(src.name, fields, count_only, where, order, limit, offset, bound[0],
                     self.text, bound[1])

    def integer(self) -> int:
        t = self.tok
        if t.kind != "number" or not t.text.isdigit():
            self.unexpected()
        self.k += 1
        return int(t.text)

    def field(self, t: Tok, purpose: str = "") -> SfField:
        assert self.src is not None
        if t.kind != "ident" or t.text.lower() in _KEYWORDS:
            self.unexpected(t)
        if "." in t.text:
            raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                            + f"Didn't understand relationship '{t.text.split('.')[0]}' in "
                            "field path. The leadgate sandbox does not support relationship "
                            "queries.")
        f = self.src.fields.get(t.text.lower())
        if f is None:
            raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                            + f"No such column '{t.text}' on entity '{self.src.name}'. If you "
                            "are attempting to use a custom field, be sure to append the '__c' "
                            "after the custom field name. Please reference your WSDL or the "
                            "describe call for the appropriate names.")
        if purpose and f.type == "textarea" and f.length > 255:
            raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                            + f"field '{f.name}' can not be {purpose}  in a query call")
        return f

    # Each condition compiles to (predicate, bound). The bound says what every match must
    # satisfy — lower bounds on datetime fields, a set of Ids — so a table can skip records
    # without reading them; the predicate still decides.
    def condition(self) -> tuple[Callable[[Any], bool], Bound]:
        parts = [self.unary()]
        joiner = None
        while self.kw("and", "or"):
            word = self.tok.text.lower()
            if joiner and word != joiner:
                self.unexpected()  # Salesforce: AND and OR need parentheses to mix
            joiner = word
            self.k += 1
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        preds = [p for p, _ in parts]
        bounds = [b for _, b in parts]
        if joiner == "and":
            return _chain(preds, conj=True), _both(bounds)
        return _chain(preds, conj=False), _either(bounds)

    def unary(self) -> tuple[Callable[[Any], bool], Bound]:
        if self.kw("not"):
            self.k += 1
            inner, _ = self.unary()
            return (lambda key: not inner(key)), _NO_BOUND
        if self.tok.text == "(":
            self.k += 1
            cond = self.condition()
            if self.tok.text != ")":
                self.unexpected()
            self.k += 1
            return cond
        return self.comparison()

    def comparison(self) -> tuple[Callable[[Any], bool], Bound]:
        assert self.src is not None
        ftok = self.tok
        f = self.field(ftok, purpose="filtered")
        self.k += 1
        get = self.src.accessor(f.name)
        optok = self.tok
        if optok.kind == "op":
            op = "!=" if optok.text == "<>" else optok.text
            self.k += 1
            vtok = self.tok
            value = self.literal(f, vtok)
            self.k += 1
            if value is None and op not in ("=", "!="):
                self.unexpected(vtok)
            bound = _NO_BOUND
            if value is not None and op in (">", ">=", "=") and f.type == "datetime":
                bound = ({f.name: value}, None)
            elif value is not None and op == "=" and f.type == "id":
                bound = ({}, frozenset({value[:15]}))
            return _compare(get, op, value, f), bound
        negate = False
        if self.kw("not"):
            negate = True
            self.k += 1
        if self.kw("in"):
            self.k += 1
            if self.tok.text != "(":
                self.unexpected()
            self.k += 1
            values = []
            while True:
                values.append(self.literal(f, self.tok))
                self.k += 1
                if self.tok.text == ",":
                    self.k += 1
                    continue
                if self.tok.text != ")":
                    self.unexpected()
                self.k += 1
                break
            in_bound: Bound = _NO_BOUND
            if f.type == "id" and not negate and None not in values:
                in_bound = ({}, frozenset(v[:15] for v in values))
            return _in(get, values, f, negate), in_bound
        if self.kw("like") and not negate:
            self.k += 1
            vtok = self.tok
            if vtok.kind != "string" or f.type not in _TEXT_TYPES | {"id", "reference"}:
                self.unexpected(vtok)
            self.k += 1
            return _like(get, vtok.value), _NO_BOUND
        self.unexpected()
        raise AssertionError  # unreachable

    def literal(self, f: SfField, t: Tok) -> Any:
        if t.kind == "ident" and t.text.lower() == "null":
            return None
        expected = _TYPE_NAMES.get(f.type)
        if f.type in _TEXT_TYPES or f.type in ("id", "reference"):
            if t.kind != "string":
                raise SoqlError("MALFORMED_QUERY", _where(self.text, t.pos)
                                + f"value of filter criterion for field '{f.name}' must be of "
                                "type string and should be enclosed in quotes")
            return t.value
        if t.kind == "string":
            raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                            + f"value of filter criterion for field '{f.name}' must be of type "
                            f"{expected} and should not be enclosed in quotes")
        if f.type == "datetime":
            if t.kind != "datetime":
                if t.kind == "ident" and t.text.upper().split(":")[0] in _DATE_LITERALS:
                    self.unexpected(t, " (date literals are not supported by the leadgate "
                                       "sandbox; use a dateTime value)")
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                                + f"value of filter criterion for field '{f.name}' must be of "
                                "type dateTime and should not be enclosed in quotes")
            return parse_datetime_ms(t.text)
        if f.type == "date":
            if t.kind != "date":
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                                + f"value of filter criterion for field '{f.name}' must be of "
                                "type date and should not be enclosed in quotes")
            return t.text
        if f.type == "boolean":
            if not (t.kind == "ident" and t.text.lower() in ("true", "false")):
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                                + f"value of filter criterion for field '{f.name}' must be of "
                                "type boolean and should not be enclosed in quotes")
            return t.text.lower() == "true"
        if t.kind != "number":
            raise SoqlError("INVALID_FIELD", _where(self.text, t.pos)
                            + f"value of filter criterion for field '{f.name}' must be of type "
                            f"{expected} and should not be enclosed in quotes")
        return float(t.text)


_DATE_LITERALS = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "LAST_MONTH",
                  "THIS_MONTH", "LAST_N_DAYS", "NEXT_N_DAYS", "LAST_90_DAYS", "THIS_YEAR"}


Bound = tuple[dict[str, int], frozenset[str] | None]
_NO_BOUND: Bound = ({}, None)


def _both(bounds: list[Bound]) -> Bound:
    """AND: every bound holds — the highest floor per field, the intersection of Id sets."""
    floors: dict[str, int] = {}
    ids: frozenset[str] | None = None
    for fl, i in bounds:
        for k, v in fl.items():
            floors[k] = max(v, floors.get(k, v))
        if i is not None:
            ids = i if ids is None else ids & i
    return floors, ids


def _either(bounds: list[Bound]) -> Bound:
    """OR: only what all branches share — the lowest floor of fields every branch bounds,
    the union of Id sets if every branch has one."""
    common = set(bounds[0][0]).intersection(*(b[0] for b in bounds[1:]))
    floors = {k: min(b[0][k] for b in bounds) for k in common}
    sets = [b[1] for b in bounds]
    ids = frozenset().union(*sets) if all(s is not None for s in sets) else None  # type: ignore[arg-type]
    return floors, ids


def _chain(parts: list[Callable[[Any], bool]], conj: bool) -> Callable[[Any], bool]:
    """AND/OR of predicates as nested two-way closures: no generator per record."""
    def both(a: Callable[[Any], bool], b: Callable[[Any], bool]) -> Callable[[Any], bool]:
        return lambda key: a(key) and b(key)

    def either(a: Callable[[Any], bool], b: Callable[[Any], bool]) -> Callable[[Any], bool]:
        return lambda key: a(key) or b(key)

    fn = parts[0]
    for nxt in parts[1:]:
        fn = both(fn, nxt) if conj else either(fn, nxt)
    return fn


def _norm(f: SfField) -> Callable[[Any], Any]:
    if f.type in _TEXT_TYPES:
        return lambda v: v.casefold() if isinstance(v, str) else v
    if f.type in ("id", "reference"):
        return lambda v: v[:15] if isinstance(v, str) and len(v) == 18 else v
    return lambda v: v


def _compare(get: Callable[[Any], Any], op: str, value: Any, f: SfField
             ) -> Callable[[Any], bool]:
    norm = _norm(f)
    if value is None:
        if op == "=":
            return lambda key: get(key) is None
        return lambda key: get(key) is not None
    v = norm(value)
    if op == "=" and f.type in ("id", "reference"):
        v15 = v[:15]  # ids compare on their 15-character form; most values are 18 long
        return lambda key: (x := get(key)) is not None and x[:15] == v15
    if op == "=":
        return lambda key: norm(get(key)) == v
    if op == "!=":
        return lambda key: norm(get(key)) != v  # a null field matches, as in SOQL
    import operator

    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def test(key: Any) -> bool:
        x = get(key)
        return x is not None and fn(norm(x), v)

    return test


def _in(get: Callable[[Any], Any], values: list[Any], f: SfField, negate: bool
        ) -> Callable[[Any], bool]:
    norm = _norm(f)
    wanted = {norm(v) for v in values}
    if negate:
        return lambda key: norm(get(key)) not in wanted
    return lambda key: norm(get(key)) in wanted


def _like(get: Callable[[Any], Any], pattern: str) -> Callable[[Any], bool]:
    out = []
    k = 0
    while k < len(pattern):
        c = pattern[k]
        if c == "\\" and k + 1 < len(pattern):
            out.append(re.escape(pattern[k + 1]))
            k += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        k += 1
    rx = re.compile("".join(out), re.IGNORECASE | re.DOTALL)
    return lambda key: isinstance(v := get(key), str) and rx.fullmatch(v) is not None


def parse(text: str, sources: dict[str, Source]) -> Query:
    """Parse and compile one query against the given objects (keys: lower-case names)."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(text, sources).parse()


def sort_keys(keys: list[Any], order: Sequence[tuple[str, bool, bool]], src: Source) -> None:
    """Sort in place by ORDER BY clauses (stable sorts from the last clause to the first)."""
    for name, desc, nulls_first in reversed(order):
        f = src.fields[name.lower()]
        get = src.sort_accessor(name)
        norm = _norm(f)  # (leaves a table's integer sort keys for Id as they are)
        values = [(get(k), k) for k in keys]  # one read per record: cold fields are generated
        present = [(norm(v), k) for v, k in values if v is not None]
        absent = [k for v, k in values if v is None]
        present.sort(key=lambda vk: vk[0], reverse=desc)
        ordered = [k for _, k in present]
        keys[:] = absent + ordered if nulls_first else ordered + absent


def run(query: Query, src: Source, candidates: Iterable[Any]) -> list[Any]:
    """Keys matching the query, ordered, with OFFSET and LIMIT applied."""
    pred = query.where
    keys = [k for k in candidates if pred(k)] if pred else list(candidates)
    if query.order:
        sort_keys(keys, query.order, src)
    end = None if query.limit is None else query.offset + query.limit
    if query.offset or end is not None:
        keys = keys[query.offset:end]
    return keys
