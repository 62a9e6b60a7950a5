"""The API contract, defined once: request bodies as pydantic models, answers as typed dicts,
and the OpenAPI document generated from both.

Why pydantic: it compiles a model into a validator once (pydantic-core, in Rust), gives
every refusal with its place in the body (``loc``) so errors name nested fields
(``volumes[0].target``) without each parser threading a prefix through, and emits JSON
Schema 2020-12 from the very types that validate, which is what OpenAPI 3.1 uses; the
document can no longer say one thing while the parser does another. Our own wording of
each refusal stays: the field types (``fields.py``) are ``BeforeValidator`` s that read
what people type ("512M", cpu "500m", "1m30s") and raise :class:`problems.Problem`, which
:func:`problems.refusal` turns into the ``{"error", "field"}`` answer. The state machine
never sees pydantic: models convert to the frozen dataclasses of ``orion/domain/model.py`` and
``orion/domain/service.py``.
"""
