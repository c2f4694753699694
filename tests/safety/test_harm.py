import pytest

from tasks.safety.harm import harm_scores


@pytest.mark.parametrize("text", [
    "This is a killer deal on boots.", "Our new jacket is to die for.", "Shoot us a message with questions.",
    "Beat the crowds and shop early.", "These prices will blow you away.", "A bombproof tent for any storm.",
    "Pack a first-aid kit for the trail.", "Take 20% off trail footwear."])
def test_marketing_idioms_score_zero(text):
    assert max(harm_scores(text).values()) < 4, harm_scores(text)


@pytest.mark.parametrize("text,category", [
    ("I will kill you if you do not buy.", "violence"),
    ("You should kill yourself.", "self_harm"),
    ("Immigrants are vermin and should leave.", "hate"),
    ("Click for explicit sex videos and porn.", "sexual"),
])
def test_clear_harm_scores_high(text, category):
    assert harm_scores(text)[category] >= 6
