from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuda_ci.infra.components import UNITS, get_unit
from cuda_ci.infra.errors import TagError
from cuda_ci.plan.tags import parse_tag, tag_name

numbers = st.integers(min_value=0, max_value=10**6)
pre = st.one_of(st.just(""), st.builds(lambda kind, n: f"{kind}{n}", st.sampled_from(["a", "b", "rc"]), numbers))
post = st.one_of(st.just(""), st.builds(lambda n: f".post{n}", numbers))


@given(unit=st.sampled_from(UNITS), major=numbers, minor=numbers, micro=numbers, pre=pre, post=post)
def test_valid_tags_round_trip(unit, major, minor, micro, pre, post) -> None:  # type: ignore[no-untyped-def]
    text = f"{major}.{minor}.{micro}{pre}{post}"
    tag = tag_name(unit, text)
    parsed = parse_tag(tag)
    assert parsed.unit is unit
    assert str(parsed.version) == text
    assert tag_name(parsed.unit, parsed.version) == tag
    assert parse_tag(tag, unit.name) == parsed
    assert parsed.ref == f"refs/tags/{tag}"


GARBAGE = [
    "",
    " ",
    " v1.0.0",
    "v1.0.0 ",
    "v1.2",
    "v1.2.3.4",
    "v01.0.0",
    "v1.00.0",
    "v1.0.0rc01",
    "v1.0.0-rc1",
    "v1.0.0RC1",
    "v1.0.0.rc1",
    "v1.0.0c1",
    "v1.0.0.dev1",
    "v1.0.0+local",
    "v1!1.0.0",
    "V1.0.0",
    "1.0.0",
    "cuda-foo-v1.0.0",
    "cuda-core-1.0.0",
    "v1.0.0;id",
    "$(id)",
    "`id`",
    "v1.0.0`id`",
    "--upload-pack=x",
    "-v1.0.0",
    "../v1.0.0",
    "refs/heads/main",
    "refs/tags/v1.0.0",
    "v1.0.0/../x",
    "v" + "1" * 10_000 + ".0.0",
    "v\uff11.0.0",  # fullwidth digit one
    "v1.0.0\u200b",
    "cuda\u2010core-v1.0.0",  # hyphen look-alike
    "v1.0.0\n",
]


@pytest.mark.parametrize("tag", GARBAGE, ids=lambda t: repr(t)[:40])
def test_garbage_is_refused_with_the_valid_patterns(tag: str) -> None:
    with pytest.raises(TagError) as info:
        parse_tag(tag)
    message = str(info.value)
    assert "is not a release tag" in message
    assert "cuda-pathfinder-vX.Y.Z" in message
    assert "cuda-core-vX.Y.Z" in message
    assert len(message) < 1000


@given(st.text(max_size=60))
def test_arbitrary_text_is_parsed_or_refused_never_crashes(text: str) -> None:
    try:
        parsed = parse_tag(text)
    except TagError:
        return
    assert text == tag_name(parsed.unit, parsed.version)


def test_another_units_tag_is_refused_naming_both() -> None:
    with pytest.raises(TagError, match="releases cuda-core, not cuda-bindings"):
        parse_tag("cuda-core-v0.3.0", "cuda-bindings")


def test_post_and_pre_releases_reuse_the_final_versions_notes() -> None:
    assert parse_tag("v13.0.1.post2").notes_version == "13.0.1"
    assert parse_tag("v13.0.1rc1.post2").notes_version == "13.0.1"
    for pre in ("a1", "b2", "rc1"):
        assert parse_tag(f"cuda-pathfinder-v1.2.0{pre}").notes_version == "1.2.0", "upstream keeps one page per final"
    assert parse_tag("cuda-core-v0.3.0").notes_version == "0.3.0"


def test_v_tag_releases_bindings_and_metapackage_in_upload_order() -> None:
    assert get_unit("cuda-bindings").distributions == ("cuda-bindings", "cuda-python")
    assert parse_tag("v13.0.1").unit.name == "cuda-bindings"
