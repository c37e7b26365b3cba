"""Names people type are checked whole: a newline inside one is refused, never kept."""

import pytest

from mailgate import validate
from mailgate.errors import InvalidInput


@pytest.mark.parametrize("value", ["example\n.com", "exa mple.com", "-x.example.com", "example.com\n.evil"])
def test_a_domain_with_a_newline_or_a_bad_label_is_refused(value):
    with pytest.raises(InvalidInput):
        validate.domain_name(value)


@pytest.mark.parametrize("value", ["sa\nles", "sales\n.x", "sales\n\nx"])
def test_a_local_part_with_a_newline_is_refused(value):
    with pytest.raises(InvalidInput):
        validate.local_part(value)


def test_surrounding_blanks_are_trimmed_and_names_lower_cased():
    assert validate.domain_name(" Example.COM. ") == "example.com"
    assert validate.address_parts("Sales@Example.com") == ("sales", "example.com")
