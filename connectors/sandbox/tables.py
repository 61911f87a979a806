"""Record tables behind both APIs.

`LazyTable` holds the generated leads/contacts: the few fields that queries filter and sort
on ("hot" fields: timestamps, owner, status) live in plain per-field lists; everything else is
generated from the seed when a record is read, overlaid with what writes changed. Memory is
O(records) small columns + O(written records), not one dict per lead.
`RowTable` holds the small objects (users, queues, owners, custom fields) as dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .schema import SfField
from .soql import Source


class LazyTable(Source):
    def __init__(
        self,
        name: str,
        fields: Sequence[SfField],
        n: int,
        *,
        hot: dict[str, list[Any]],
        cold: Callable[[int], dict[str, Any]],
        id_of: Callable[[int], str],
        index_of: Callable[[str], int | None],
        id_field: str,
        modstamp_field: str,
        base_ms: Callable[[int], int],
        ms_to_index: Callable[[int], int],
    ) -> None:
        super().__init__(name, fields)
        self.n_base = n
        self.n = n
        self.cols: dict[str, list[Any]] = hot  # one list per hot field, len n
        self._cold = cold
        # The fields the generator makes (the same keys for every record). The others, such as
        # leadgate's installed fields, hold only what writes set: they are read from the
        # overrides without generating the record (the owner re-read asks for one of them).
        self.generated = frozenset(cold(0)) if n else frozenset()
        self.id_of = id_of
        self._index_of = index_of
        self.id_field = id_field
        self.modstamp_field = modstamp_field
        self.base_ms = base_ms
        self._ms_to_index = ms_to_index
        self.overrides: dict[int, dict[str, Any]] = {}
        self.touched: set[int] = set()  # records whose modstamp moved since generation
        self.deleted: set[int] = set()  # records a person deleted (or merged into another)
        self.version = 0  # counts writes; last_write: index -> version of its last write
        self.last_write: dict[int, int] = {}
        self._cache_i = -1
        self._cache: dict[str, Any] = {}

    # -- reading
    def index_of(self, record_id: str) -> int | None:
        i = self._index_of(record_id)
        return i if i is not None and 0 <= i < self.n and i not in self.deleted else None

    def cold(self, i: int) -> dict[str, Any]:
        if i == self._cache_i:
            return self._cache
        base = self._cold(i) if i < self.n_base else {}
        over = self.overrides.get(i)
        if over:
            base = {**base, **over}
        self._cache_i, self._cache = i, base
        return base

    def written(self, i: int, field: str) -> Any:
        """A field the generator does not make: what a write set, else None."""
        over = self.overrides.get(i)
        return over.get(field) if over else None

    def get(self, i: int, field: str) -> Any:
        col = self.cols.get(field)
        if col is not None:
            return col[i]
        if field == self.id_field:
            return self.id_of(i)
        if field not in self.generated:
            return self.written(i, field)
        return self.cold(i).get(field)

    def accessor(self, field: str) -> Callable[[int], Any]:
        f = self.fields[field.lower()].name
        col = self.cols.get(f)
        if col is not None:
            return col.__getitem__
        if f == self.id_field:
            return self.id_of
        if f not in self.generated:
            return lambda i: self.written(i, f)
        return lambda i: self.cold(i).get(f)

    def sort_accessor(self, field: str) -> Callable[[int], Any]:
        # generated ids sort in index order: sorting by Id needs no id strings at all
        if self.fields[field.lower()].name == self.id_field and self.id_field == "Id":
            return _identity
        return self.accessor(field)

    def record(self, i: int, fields: Iterable[str]) -> dict[str, Any]:
        cold = None
        out: dict[str, Any] = {}
        for f in fields:
            col = self.cols.get(f)
            if col is not None:
                out[f] = col[i]
            elif f == self.id_field:
                out[f] = self.id_of(i)
            elif f not in self.generated:
                out[f] = self.written(i, f)
            else:
                if cold is None:
                    cold = self.cold(i)
                out[f] = cold.get(f)
        return out

    def candidates(self, floor: tuple[str, int] | None = None,
                   ids: Iterable[str] | None = None) -> Iterator[int]:
        """The indices that can match: those of `ids` if given; else, given a lower bound on
        the modstamp-like field, those at or after it (generated records are in modstamp
        order, written ones are tracked); else all."""
        if ids is not None:
            found = {self.index_of(x) for x in ids}
            yield from sorted(i for i in found if i is not None)
            return
        yield from (i for i in self._candidates(floor) if i not in self.deleted) \
            if self.deleted else self._candidates(floor)

    def _candidates(self, floor: tuple[str, int] | None) -> Iterator[int]:
        if floor is None or floor[0] not in (self.modstamp_field,) or not self.n_base:
            yield from range(self.n)
            return
        lo = max(0, min(self.n_base, self._ms_to_index(floor[1])))
        yield from (i for i in sorted(self.touched) if i < lo)
        yield from range(lo, self.n)

    # -- writing
    def delete(self, i: int) -> None:
        """The record is gone: no query finds it, a write to it fails as in the real CRM."""
        self.deleted.add(i)
        if i == self._cache_i:
            self._cache_i = -1

    def set(self, i: int, values: dict[str, Any]) -> None:
        if i == self._cache_i:
            self._cache_i = -1
        self.version += 1
        self.last_write[i] = self.version
        over = None
        for f, v in values.items():
            col = self.cols.get(f)
            if col is not None:
                col[i] = v
            else:
                if over is None:
                    over = self.overrides.setdefault(i, {})
                over[f] = v
        if self.modstamp_field in values:
            self.touched.add(i)

    def append(self, values: dict[str, Any]) -> int:
        i = self.n
        self.n += 1
        self.version += 1
        self.last_write[i] = self.version
        for f, col in self.cols.items():
            col.append(values.get(f))
        self.overrides[i] = {f: v for f, v in values.items() if f not in self.cols}
        self.touched.add(i)
        return i

    def pop_last(self) -> None:
        """Undo the last `append` (a create rolled back with its Composite request)."""
        i = self.n - 1
        self.n = i
        for col in self.cols.values():
            col.pop()
        self.overrides.pop(i, None)
        self.touched.discard(i)
        self.last_write.pop(i, None)
        if i == self._cache_i:
            self._cache_i = -1


def _identity(i: int) -> int:
    return i


class RowTable(Source):
    """A small object stored as a list of dicts (key = position)."""

    def __init__(self, name: str, fields: Sequence[SfField], id_field: str = "Id") -> None:
        super().__init__(name, fields)
        self.rows: list[dict[str, Any]] = []
        self.id_field = id_field
        self._by_id: dict[str, int] = {}

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        self._by_id[str(row[self.id_field])] = len(self.rows)
        self._by_id[str(row[self.id_field])[:15]] = len(self.rows)
        self.rows.append(row)
        return row

    def find(self, record_id: str) -> dict[str, Any] | None:
        k = self._by_id.get(record_id)
        if k is None and len(record_id) == 18:
            k = self._by_id.get(record_id[:15])
        return None if k is None else self.rows[k]

    def accessor(self, field: str) -> Callable[[int], Any]:
        f = self.fields[field.lower()].name
        rows = self.rows
        return lambda k: rows[k].get(f)

    def record(self, k: int, fields: Iterable[str]) -> dict[str, Any]:
        row = self.rows[k]
        return {f: row.get(f) for f in fields}

    def candidates(self, floor: tuple[str, int] | None = None,
                   ids: Iterable[str] | None = None) -> Iterator[int]:
        return iter(range(len(self.rows)))
