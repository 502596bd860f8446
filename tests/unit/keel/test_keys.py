"""Principal ids: what names a person or a service, and what is refused."""

import pytest
from pydantic import ValidationError

from keel.schemas.keys import KeyCreate


@pytest.mark.parametrize("principal", ["ana", "ci-bot", "ana@example.com", "a.b_c+d", "7" * 64])
def test_a_principal_id_is_lower_case_ascii(principal: str) -> None:
    assert KeyCreate(role="reviewer", name="x", principal=principal).principal == principal


@pytest.mark.parametrize("principal", ["Ana", "", "ana souza", "-ana", ".ana", "a" * 65, "anä"])
def test_anything_else_is_refused_with_the_rule(principal: str) -> None:
    with pytest.raises(ValidationError, match="is not a principal id: 1 to 64 characters"):
        KeyCreate(role="reviewer", name="x", principal=principal)


def test_a_principal_may_be_left_out() -> None:
    assert KeyCreate(role="reviewer", name="x").principal is None
