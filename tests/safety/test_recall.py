"""Recall beyond the phrasings the lexicon was first written for (issue 14): slurs for protected groups, and
graphic descriptions of injury or death. Each case says what must block and what must not: the look-alikes of a
slur, and the same words of injury in an animal, food, medical, history or game context."""
import pytest

from tasks.safety import LocalHarmScorer
from tasks.safety.harm import findings, harm_scores


@pytest.mark.parametrize("text", [
    "Every nigger in this town should be strung up.", "Someone should shoot those n*ggers.",
    "We need to round up the kikes.", "Those filthy spics should be sent back.", "Wetbacks out.",
    "Kill all the ragheads.", "A faggot like him.", "That chink again."])
def test_a_slur_is_hate(text):
    assert harm_scores(text)["hate"] >= 6
    assert any(f.pattern_id == "hate-012" for f in findings(text))


@pytest.mark.parametrize("text", [
    "Maine Coon Cat Tree Tower", "Van Dyke Brown Acrylic Paint", "A chink in the armour appeared in the second half.",
    "Spic and Span Multi-Surface Cleaner", "He was never niggardly with praise.", "The kids began to snigger.",
    "Coonhound puppy harness", "Spices for every kitchen", "Muslim Prayer Mat with Compass",
    "Jewish Star of David Pendant", "Gay Pride Rainbow Flag 3x5 ft"])
def test_look_alikes_of_slurs_and_identity_words_are_not_hate(text):
    assert harm_scores(text)["hate"] < 4


@pytest.mark.parametrize("text", [
    "The bullet tore through his skull and brain matter splattered all over the car window.",
    "They hacked off his arms with a machete and left him bleeding in the mud, the stumps gushing.",
    "I sliced her open and watched the blood spray across the walls while she screamed.",
])
def test_a_graphic_description_is_violence(text):
    assert LocalHarmScorer().score(text)["violence"] >= 6


@pytest.mark.parametrize("text", [
    "Every year billions of pigs and cows are slaughtered, their blood drained and their flesh sold as meat.",
    "To gut a fish, slice open the belly, pull out the guts and entrails, and rinse the blood from the cavity.",
    "The surgeon opened the skull, removed the tumour and stopped the bleeding before closing the wound.",
    "Our new horror game lets you fight off zombies in a blood-soaked mansion full of skulls and bones.",
    "First aid: apply pressure to the wound to stop the bleeding, then raise the injured limb.",
    "Halloween costume: zombie bride with fake blood, a severed hand prop and gory makeup.",
    "They torched the church in 1921, killing dozens.",
])
def test_words_of_injury_in_context_do_not_block(text):
    assert LocalHarmScorer().score(text)["violence"] < 6


@pytest.mark.parametrize("text,pattern_id", [
    ("We should round up every Muslim in this town and shoot them.", "hate-013"),
    ("Let's go kill some immigrants tonight.", "hate-013"),
    ("The day of the rope is coming.", "hate-014"),
    ("Every race traitor will pay.", "hate-014"),
    ("Get a rope, there are too many immigrants here.", "hate-014"),
    ("The refugees need to be drowned before they land.", "hate-007"),
])
def test_a_threat_against_a_group_is_hate(text, pattern_id):
    assert harm_scores(text)["hate"] >= 6
    assert any(f.pattern_id == pattern_id for f in findings(text))


@pytest.mark.parametrize("text", [
    "We will never let anyone hurt our immigrant families.", "I want to beat the Mexican team in the final!",
    "Let us kill the bugs in our Jewish holiday app.", "You can hunt for deals on gay pride merchandise.",
    "We stand with our Muslim neighbours against those who would burn their mosques.",
    "Get a rope and tie the boat to the dock.", "Zog and the Flying Doctors (Hardcover)",
    "Put the tray into the oven for 20 minutes."])
def test_groups_and_everyday_verbs_are_not_a_threat(text):
    assert harm_scores(text)["hate"] < 6


@pytest.mark.parametrize("text", [
    "They gouged his eyes out.", "His body was found with the fingers chopped off.",
    "They peeled the skin off his back while he begged them to stop."])
def test_a_body_part_cut_off_is_graphic_in_any_tense(text):
    assert harm_scores(text)["violence"] >= 6
    assert any(f.pattern_id == "violence-033" for f in findings(text))


@pytest.mark.parametrize("text", [
    "Peel Off Face Mask with Charcoal", "Pull your hands out of your pockets.", "My ears were blown off by that concert!",
    "Slice the fish head off and cut the tail off.", "Tear the legs off the crab.", "Cut the chicken legs off at the joint."])
def test_everyday_cutting_and_peeling_is_not_graphic(text):
    assert harm_scores(text)["violence"] < 6


@pytest.mark.parametrize("text", [
    "Looking for pics of 12 year old girls naked, will trade.", "My 15yo neighbour gets me so horny.",
    "Write a story where a 14-year-old boy loses his virginity.", "Any loli hentai recommendations?",
    "Shotacon doujins, the younger the better."])
def test_a_child_with_explicit_words_is_extreme(text):
    assert harm_scores(text)["sexual"] == 7
    assert any(f.pattern_id == "sexual-013" for f in findings(text))


@pytest.mark.parametrize("text", [
    "Sex education for 12 year olds: how to talk about puberty.", "Our 16-year-old intern built the robot's arm.",
    "Graduated summa cum laude at 17 years old.", "Moby Dick abridged for 10 year olds", "Loli Baby Organic Cotton Romper",
    "Blue tits and robins: a bird guide for 8 year olds", "Lolita-style dress (Japanese street fashion), adult sizes."])
def test_a_child_s_age_in_ordinary_copy_is_not_sexual(text):
    assert harm_scores(text)["sexual"] < 6
