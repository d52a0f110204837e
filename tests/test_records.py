"""toolkit.records.check_records: the record checks shared by every engine, and their wording."""

import pytest

from toolkit.errors import DataError, RecordError
from toolkit.records import check_records


def test_good_records_come_back_as_a_list():
    records = ({"text": "a", "label": 1}, {"text": "b", "label": 0})
    assert check_records(records, ("text",)) == list(records)


@pytest.mark.parametrize("records", ["text", {"text": "a"}, None, 3])
def test_records_that_are_not_a_list_are_a_data_error(records):
    with pytest.raises(DataError, match=f"^training data: records must be a list of mappings, not a {type(records).__name__}$"):
        check_records(records, ("text",))


def test_no_records_names_the_part():
    with pytest.raises(DataError, match="^validation data: no records$"):
        check_records([], ("text",), "validation data")


@pytest.mark.parametrize("record, problem", [
    ("just text", " is a str, not a mapping"),
    ({"label": "x"}, " has no 'text'"),
    ({"text": None}, " has no 'text'"),
    ({"text": 7}, ": text is a int, not a string"),
    ({"text": "  "}, " has an empty text"),
])
def test_the_first_bad_record_is_a_record_error(record, problem):
    with pytest.raises(RecordError) as info:
        check_records([{"text": "fine"}, record], ("text",), "evaluation data")
    error = info.value
    assert (str(error), error.part, error.number, error.problem) == (
        f"evaluation data: record 2{problem}", "evaluation data", 2, problem)


def test_empty_strings_pass_only_when_allowed():
    assert check_records([{"article": "", "summary": " "}], ("article", "summary"), empty=True)
    with pytest.raises(RecordError, match="record 1 has an empty article"):
        check_records([{"article": "", "summary": " "}], ("article", "summary"))
