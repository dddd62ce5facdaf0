"""The service's request and response schemas are built once, not on every request, and a
caller that edits the schema it got does not change the next caller's."""

from __future__ import annotations

import pydantic
import pytest

from services.service import FraudService

pytestmark = pytest.mark.unit


def descriptors() -> list[tuple[str, type]]:
    return [
        (f"{name}.{side}", getattr(method, f"{side}_spec"))
        for name, method in FraudService.apis.items()
        for side in ("input", "output")
    ]


@pytest.mark.parametrize(("where", "descriptor"), descriptors(), ids=lambda x: str(x))
def test_a_request_reads_the_schema_without_building_it_again(
    where: str, descriptor: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = descriptor.model_json_schema()  # type: ignore[attr-defined]
    built = 0
    adapter_schema = pydantic.TypeAdapter.json_schema
    model_schema = pydantic.BaseModel.model_json_schema.__func__  # type: ignore[attr-defined]

    def adapter_counting(self: pydantic.TypeAdapter, *args: object, **kwargs: object) -> dict:
        nonlocal built
        built += 1
        return adapter_schema(self, *args, **kwargs)

    def model_counting(cls: type, *args: object, **kwargs: object) -> dict:
        nonlocal built
        built += 1
        return model_schema(cls, *args, **kwargs)

    # root descriptors build through a TypeAdapter, model descriptors through the model
    monkeypatch.setattr(pydantic.TypeAdapter, "json_schema", adapter_counting)
    monkeypatch.setattr(pydantic.BaseModel, "model_json_schema", classmethod(model_counting))
    for _ in range(3):
        assert descriptor.mime_type() == "application/json"  # type: ignore[attr-defined]
        assert descriptor.model_json_schema() == expected  # type: ignore[attr-defined]
    assert built == 0, where


def test_editing_a_returned_schema_leaves_the_kept_one_whole() -> None:
    descriptor = FraudService.apis["score_batch"].input_spec
    first = descriptor.model_json_schema()
    first.clear()
    assert descriptor.model_json_schema()["type"] == "array"


def test_a_schema_asked_with_options_is_still_built_with_them() -> None:
    descriptor = FraudService.apis["score"].output_spec
    schema = descriptor.model_json_schema(mode="serialization")
    assert schema["type"] == "object"
