"""The pipeline, defined once."""
from __future__ import annotations

from shared.pipeline import PIPELINES, Endpoint, Stage, served_by, stage_subject, stages_for


def test_every_pipeline_ends_at_the_router() -> None:
    assert all(stages[-1] is Stage.ROUTER for stages in PIPELINES.values())
    assert set(PIPELINES) == set(Endpoint)


def test_optional_stages_can_be_left_out_but_never_the_router() -> None:
    assert stages_for(Endpoint.CHAT) == (Stage.GUARDRAILS, Stage.ROUTER)
    assert stages_for(Endpoint.CHAT, frozenset({Stage.GUARDRAILS})) == (Stage.ROUTER,)
    assert stages_for(Endpoint.CHAT, frozenset({Stage.ROUTER})) == (Stage.GUARDRAILS, Stage.ROUTER)


def test_subjects_and_what_each_stage_serves() -> None:
    assert stage_subject(Stage.ROUTER, Endpoint.EMBEDDINGS) == "jetgate.rpc.router.embeddings"
    assert served_by(Stage.ROUTER) == tuple(Endpoint)
    # every text the upstream reads, but pass-through calls (formats guardrails do not know)
    assert served_by(Stage.GUARDRAILS) == (Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.EMBEDDINGS,
                                           Endpoint.COMPLETIONS, Endpoint.MODERATIONS, Endpoint.IMAGES, Endpoint.SPEECH)
    assert stages_for(Endpoint.PASSTHROUGH) == stages_for(Endpoint.TRANSCRIPTIONS) == (Stage.ROUTER,)
    assert stages_for(Endpoint.EMBEDDINGS) == (Stage.GUARDRAILS, Stage.ROUTER)
