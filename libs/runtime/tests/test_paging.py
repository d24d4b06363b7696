"""``billing_runtime.paging``: a list's query (limit, capped offset, Stripe's cursors) and its page."""

from __future__ import annotations

import pytest
from billing_runtime.errors import ProblemError
from billing_runtime.paging import MAX_OFFSET, Cursor, ListPaging, list_paging, unknown_cursor


def _refused(query: dict[str, str]) -> tuple[int, str, str]:
    with pytest.raises(ProblemError) as caught:
        list_paging(query)
    assert caught.value.errors is not None
    return caught.value.status, caught.value.code, caught.value.errors[0].field


class TestListPaging:
    def test_defaults(self) -> None:
        assert list_paging({}) == ListPaging(20, 0, None)

    def test_the_offset_cap_itself_is_allowed(self) -> None:
        assert list_paging({"offset": str(MAX_OFFSET), "limit": "100"}) == ListPaging(100, MAX_OFFSET, None)

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"offset": str(MAX_OFFSET + 1)}, "offset"),
            ({"offset": "2147483647"}, "offset"),
            ({"offset": "-1"}, "offset"),
            ({"limit": "0"}, "limit"),
            ({"limit": "101"}, "limit"),
            ({"starting_after": "pay_a", "ending_before": "pay_b"}, "ending_before"),
            ({"starting_after": "pay_a", "offset": "3"}, "offset"),
            ({"ending_before": "not an id"}, "ending_before"),
            ({"starting_after": ""}, "starting_after"),
        ],
    )
    def test_bad_queries_are_422_naming_the_field(self, query: dict[str, str], field: str) -> None:
        assert _refused(query) == (422, "validation_error", field)

    def test_a_cursor_with_a_zero_offset_is_a_cursor(self) -> None:
        paging = list_paging({"ending_before": "ten_abc", "offset": "0", "limit": "5"})
        assert paging == ListPaging(5, 0, Cursor("ending_before", "ten_abc"))
        assert (paging.starting_after, paging.ending_before, paging.fetch) == (None, "ten_abc", 6)

    def test_an_unknown_cursor_names_its_field(self) -> None:
        problem = unknown_cursor(Cursor("starting_after", "pac_x"))
        assert (problem.status, problem.code, problem.detail) == (
            422,
            "validation_error",
            "starting_after: no such object",
        )


class TestPage:
    def test_the_extra_row_after_the_page_means_more(self) -> None:
        assert ListPaging(2, 0, None).page([5, 4, 3]) == ([5, 4], True)
        assert ListPaging(2, 0, Cursor("starting_after", "x_6")).page([5, 4]) == ([5, 4], False)

    def test_before_a_cursor_the_extra_row_is_the_newest(self) -> None:
        assert ListPaging(2, 0, Cursor("ending_before", "x_1")).page([4, 3, 2]) == ([3, 2], True)
        assert ListPaging(2, 0, Cursor("ending_before", "x_1")).page([2]) == ([2], False)
