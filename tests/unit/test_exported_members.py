"""Every module's `__all__` is honest: it names what exists and every public definition."""

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("keel", "workflows", "tools", "api", "worker")


def _module_names() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += [m.name for m in pkgutil.walk_packages(path, f"{package}.")]
    return sorted(names)


ALL_MODULES = _module_names()
EXPORTING = [name for name in ALL_MODULES if hasattr(importlib.import_module(name), "__all__")]


def _exports(name: str) -> tuple[ModuleType, list[str]]:
    module = importlib.import_module(name)
    return module, list(module.__all__)


def test_discovery_walks_subpackages() -> None:
    # Guards the walk itself: a broken walk would silently parametrize nothing.
    assert {"keel.schemas.reviews", "tools.models.local", "api.routes.runs"} <= set(EXPORTING)
    assert {"keel", "workflows", "tools", "api", "worker"} <= set(ALL_MODULES)


@pytest.mark.parametrize("name", EXPORTING)
def test_all_names_exist(name: str) -> None:
    module, exported = _exports(name)
    assert [n for n in exported if not hasattr(module, n)] == []


@pytest.mark.parametrize("name", EXPORTING)
def test_all_has_no_duplicates(name: str) -> None:
    _, exported = _exports(name)
    assert sorted({n for n in exported if exported.count(n) > 1}) == []


@pytest.mark.parametrize("name", EXPORTING)
def test_star_import_brings_every_name(name: str) -> None:
    _, exported = _exports(name)
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)  # a non-string or missing entry raises here
    assert [n for n in exported if n not in namespace] == []


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order, which every module follows: CONSTANTS, Classes, functions."""
    if name.upper() == name:
        return 0, name
    return (1 if name[0].isupper() else 2), name


@pytest.mark.parametrize("name", EXPORTING)
def test_all_is_sorted(name: str) -> None:
    _, exported = _exports(name)
    assert exported == sorted(exported, key=_isort_key)


def _defined_public(module: ModuleType) -> list[str]:
    """Public functions and classes defined in `module` itself, not imported into it."""
    return sorted(
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    )


@pytest.mark.parametrize("name", EXPORTING)
def test_public_definitions_are_exported(name: str) -> None:
    module, exported = _exports(name)
    assert [attr for attr in _defined_public(module) if attr not in exported] == []
