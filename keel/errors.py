"""Keel's exceptions.

```
KeelError
├── KeelUserError        a mistake in code or configuration: fails the run, never retried
└── KeelRunError         a failure at run time
    ├── ReviewNotPending a decision names a review that is not waiting for one
    └── BudgetDenied     a reviewer refused a model call over the run's budget
```
"""

__all__ = ["BudgetDenied", "KeelError", "KeelRunError", "KeelUserError", "ReviewNotPending"]


class KeelError(Exception):
    """Base of every Keel exception."""


class KeelUserError(KeelError):
    """A mistake in code or configuration."""


class KeelRunError(KeelError):
    """A failure at run time."""


class ReviewNotPending(KeelRunError):
    """A decision for a review that is not (or no longer) pending."""


class BudgetDenied(KeelRunError):
    """A reviewer refused a model call that would exceed the run's budget."""
