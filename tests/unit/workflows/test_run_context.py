"""`run_context()`: a run's services for its workflow-side nodes, and nowhere else."""

import pytest

from keel.errors import KeelUserError
from workflows.run_context import run_context


def test_outside_a_run_it_says_where_it_works() -> None:
    # An activity-side node, or a graph invoked outside Keel, has no run to ask.
    with pytest.raises(KeelUserError, match="execute_in='workflow'"):
        run_context()
