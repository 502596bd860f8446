"""The unit tier starts no server and no process: here the suite's dev server and PostgreSQL
fail the test that asks for them, naming the tiers where it belongs."""

from typing import NoReturn

import pytest

_ELSEWHERE = "unit tests start no {}: this test belongs in tests/workflows/ or tests/system/"


@pytest.fixture(scope="session")
def temporal() -> NoReturn:
    pytest.fail(_ELSEWHERE.format("Temporal dev server"), pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> NoReturn:
    pytest.fail(_ELSEWHERE.format("PostgreSQL"), pytrace=False)
