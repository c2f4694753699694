"""Embedded harm scorer: hate, self-harm, sexual and violence on Azure AI Content Safety's 0-7 scale.

Each category's score is the highest severity among its patterns that match (2 low, 4 medium, 6 high,
7 extreme); "block above Medium" (policy) means 6 and up blocks. Scoring reads structure, not single words:

- violence: a harm verb needs a *person* target ("kill him", "stab the cashier", "shoot up the school");
  "kill two birds", "crush your goals", "attack the trail" and "cut prices" have no person and score low.
  Strong verbs (kill, stab, shoot, ...) with a person are High; everyday verbs (beat, hit, kick, hurt, ...)
  need a violent complement ("until she stops moving", "in the face", "with a bat") or a threat or an
  imperative. Past tense ("the gunman shot three people") is a description: Medium.
- self-harm: encouragement addressed to the reader ("kill yourself", "starve yourself", "nobody would miss
  you"), instructions and glorification are High; first-person ideation is Medium; prevention, recovery
  and research context is Low.
- sexual: explicit acts, pornography, solicitation and nudity *with* a sexual noun are High (anything
  sexual near a minor is 7); suggestive words are Medium; "nude heels", "sexy new look", "hardcore hikers"
  are not sexual.
- hate: a protected group (religion, race, ethnicity, nationality, gender, orientation, disability, age)
  with a dehumanizing predicate ("X are vermin"), a call to remove or hurt them, or supremacist language is
  High; stereotypes, exclusion and "I hate X" are Medium; discussion of discrimination is Low.

Context: a match in a negated clause ("so you don't hurt yourself", "we would never hurt you"), with a
thing as its subject ("this hill will kill you", "my feet were killing me"), in a photography sense
("shoot your family portraits") or in meta speech ("it's a myth that women are bad at math") scores Low.
Marketing idioms ("killer deal", "to die for", "shoot us a message", "overdose on cuteness") are removed
before scoring.

Limits: this is a pattern lexicon. It was developed against tests/data/screening_eval.jsonl, where it meets the
bar (benchmarks/screening_eval.py); on harmful sentences written afterwards in new words (the set's "heldout-"
rows) it blocks about two in three, least of all indirect threats ("someone should take out the mayor").
Benign marketing copy is rarely blocked. `explain(text)` lists the patterns behind a score.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from tasks.records import HARM_CATEGORIES

LOW, MEDIUM, HIGH, EXTREME = 2, 4, 6, 7


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


# --- idioms: removed before scoring (the words stay harmless wherever they appear) ---------------------------
IDIOMS = [
    r"to die for", r"dying to(?= \w)", r"(?:could|would) die (?:happy|of (?:joy|happiness|laughter))",
    r"before (?:you|i|we) die", r"drop[- ]dead", r"dead (?:simple|easy|serious|set|on|tired|ringer|heat|wrong|right|center|centre|last)",
    r"death by chocolate", r"(?:would|could) kill for", r"kill(?:s|ing|ed)? (?:it|time|the lights|the mood|two birds)",
    r"kill(?:s|ing|ed)? (?:\w+ )?with kindness", r"(?:is|are|was|were) killing me",
    r"(?:shoot|shot|shooting) (?:us|me|them|him|her|you)(?: (?:over|back))? (?=(?:a|an|your|our|some|the)\b)",
    r"shoot(?:ing)? for (?:the )?(?:stars|moon|top)", r"shoot the (?:breeze|messenger|rapids)", r"photo ?shoots?",
    r"shooting stars?", r"(?:flu|booster|vaccine|espresso|tequila) shots?", r"(?:a|your|big) shot (?:at|of)",
    r"head ?shots?", r"mug ?shots?", r"shot glass(?:es)?", r"shoot-?outs?",
    r"(?:blow|blew|blown|blows) (?:you|them|us|your mind|their minds|minds) away", r"blow (?:your|their|my) mind",
    r"blow-?outs?", r"knock(?:s|ed)? (?:your|their|the) socks off", r"knock ?-?outs?", r"bombshells?",
    r"bath bombs?", r"photo ?bomb\w*", r"bomb cyclones?", r"bomb[- ]?proof", r"the bomb\b(?! (?:squad|threat))",
    r"suicide (?:sprints?|doors?|squeeze|squad|drills?|runs?|lanes?)", r"murder[- ](?:mystery|mysteries|hornets?)",
    r"hopeless romantics?", r"pick your poison", r"kill(?:s|ing)? (?:your|the) (?:cravings?|competition|engine)",
    r"overdos(?:e|ing) on (?!(?:\w+ ){0,2}(?:meds|medications?|medicine|pills|drugs|tablets|heroin|fentanyl|opioids"
    r"|painkillers|insulin|prescriptions?|sleeping|tylenol|sedatives)\b)",
    r"fire sales?", r"assault on (?:the )?(?:summit|peak|mountain|record|senses|taste ?buds)", r"kick(?:s|ed)? the bucket", r"(?:rv|electric|electrical|water|sewer|cable|full|campsite) hook-?ups?", r"(?:blood|bloody) (?:orange|mary|marys)", r"first[- ]aid kits?", r"sleep(?:ing)? like the dead",
    r"(?:beat|beats|beating) the (?:heat|crowds?|rush|cold|odds|clock|traffic)",
    r"(?:sex|gender)[- ]specific", r"same[- ]sex", r"sex (?:ed|education)", r"sexual (?:health|harassment policy)",
]
IDIOM = re.compile(r"\b(?:" + "|".join(IDIOMS) + r")", re.I)

# --- vocabulary ------------------------------------------------------------------------------------------------
NUM = r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|dozens of|hundreds of)"
DET = _alt("the", "that", "this", "those", "these", "a", "an", "my", "your", "his", "her", "their", "our", "its",
           "every last", "every single", "every", "each", "all the", "all of the", "all those", "all", "some", "any",
           NUM)
PERSON_N = _alt(
    "man", "men", "woman", "women", "guy", "guys", "girl", "girls", "boy", "boys", "kid", "kids", "child",
    "children", "baby", "babies", "wife", "wives", "husband", "family", "families", "mom", "mother", "dad",
    "father", "son", "daughter", "brother", "sister", r"neighbou?rs?", "boss", "manager", "teachers?", "students?",
    "cops?", "police", "officers?", "cashiers?", "clerks?", "coworkers?", "co-workers?", "employees?", "staff",
    "customers?", "workers?", "protesters?", "reporters?", "journalists?", "politicians?", "judges?", "mayor",
    "president", "senators?", "doctors?", "nurses?", "hostages?", "prisoners?", "traitors?", "victims?", "crowd",
    "bitch", "bastard", "person", "persons", "people", "adults?", "teenagers?", "classmates?", "landlord",
    "tenants?", "girlfriend", "boyfriend", "partner", "witness(?:es)?", "infidels", "villagers", "civilians",
    "soldiers", "guards?", "pedestrians", "passengers", "shoppers", "voters", "strangers?", "everyone", "everybody",
    "drivers?", "pilots?", "waiters?", "waitress(?:es)?", "bartenders?", "principal", "priests?", "imams?", "rabbis?",
    "pastors?", "referees?", "coach(?:es)?", "fans", "toddlers?", "grandma", "grandmother", "grandpa", "grandfather",
    "uncle", "aunt", "cousins?", "roommates?", "ex-wife", "ex-husband", "ex", "lovers?", "dudes?", "lawyers?",
    "agents?", "troops", "jury", "jurors?", "inmates?", "security guards?", "neighbou?rhood kids", "bully", "bullies",
    "strikers", "scabs", "rioters", "demonstrators", "marchers", "congregation", "worshippers", "students", "pupils",
    "tourists", "hikers", "campers", "drivers", "commuters", "old man", "old woman", "old lady", "thugs", "cops",
    "officials", "lawmakers", "migrants", "athletes")
PRON_T = _alt("you", "ya", "u", "him", "her", "them", "everyone", "everybody", "anyone", "anybody", "someone",
              "somebody", "y'all", "you all", "all of you", "all of them", r"every one of (?:you|them)")
GROUP_PLURAL = _alt(
    "immigrants", "migrants", "refugees", "foreigners", "illegals", "jews", "muslims", "moslems", "christians",
    "catholics", "protestants", "hindus", "sikhs", "buddhists", "atheists", "mormons", "blacks", "whites", "asians",
    "latinos", "latinas", "latinx", "hispanics", "mexicans", "arabs", "africans", "indians", "pakistanis",
    "somalis", "haitians", "chinese", "koreans", "filipinos", "gypsies", "roma", "natives", "gays", "lesbians",
    "homosexuals", "bisexuals", "queers", "transgenders", "women", "females", "girls", "cripples", "autistics")
GROUP_ADJ = _alt("jewish", "muslim", "islamic", "christian", "catholic", "hindu", "sikh", "buddhist", "black",
                 "white", "asian", "latino", "latina", "hispanic", "mexican", "arab", "african", "indian", "chinese",
                 "japanese", "korean", "gay", "lesbian", "bisexual", "queer", "trans", "transgender", "disabled",
                 "autistic", "immigrant", "foreign", "old", "elderly", "native", "indigenous", "roma", "down syndrome",
                 "deaf", "blind", "handicapped", "mentally ill", "muslim and jewish")
GROUP_NOUN = _alt("people", "persons", "folks", "men", "women", "kids", "children", "families", "family",
                  "customers", r"neighbou?rs", "workers", "students", "immigrants", "couples", "girls", "boys",
                  "guys", "race", "races", "community", "communities", "population")
GROUP_SINGULAR = _alt("immigrant", "migrant", "refugee", "foreigner", "jew", "muslim", "christian", "catholic", "hindu",
                      "sikh", "black", "asian", "latino", "mexican", "arab", "african", "indian", "gypsy", "gay",
                      "lesbian", "homosexual", "woman", "cripple")
GROUP = _alt(rf"{GROUP_ADJ} {GROUP_NOUN}", GROUP_PLURAL, r"the (?:disabled|elderly)",
             rf"(?:every|each) (?:last |single )?{GROUP_SINGULAR}")
TARGET = _alt(PRON_T, rf"(?:{DET}\s+)?(?:[\w-]+'s\s+)?(?:[\w-]+\s+)?{PERSON_N}", rf"(?:{DET}\s+)?{GROUP}")
# a person noun followed by one of these is a modifier ("your family portraits", "kids menu"), not the target
COMPOUND = re.compile(
    r"^\s*(?:photos?|portraits?|pictures?|pics|headshots?|menus?|meals?|sizes?|service|picks|favou?rites?|discounts?|"
    r"reunions?|rooms?|events?|nights?|days?|plans?|accounts?|members?|tickets?|pass(?:es)?|packs?|kits?|gear|"
    r"clothes|clothing|shoes|jackets?|bikes?|camps?|class(?:es)?|programs?|teams?|sections?|stores?|shops?|"
    r"friendly|owned|run|sized|cars?|trips?|vacations?|dinners?|brunch|lunch|tour|tours|hikes?)\b")
STRUCTURE = _alt("school", "schools", "church", "churches", "mosque", "mosques", "synagogue", "synagogues", "temple",
                 "mall", "office", "offices", "building", "buildings", "station", "airport", "embassy", "courthouse",
                 "clinic", "hospital", "concert", "stadium", "parade", "crowd", "house", "houses", "home", "homes",
                 "store", "restaurant", "club", "rally", "plane", "train", "subway", "bus", "bridge", "city hall",
                 "capitol", "headquarters", "campus", "classroom", "festival", "market", "shelter", "dorm")

WEAPON = _alt("guns?", "shotguns?", "rifles?", "pistols?", "handguns?", "knives", "knife", "blades?", "machetes?", "bats?",
              "bombs?", "explosives?", "acid", "gasoline", "petrol", "axes?", "hammers?", "crowbars?", "ammo", "bullets?")
STRONG = _alt("kill", "murder", "stab", "shoot", "strangle", "torture", "slaughter", "behead", "decapitate",
              "execute", "lynch", "maim", "mutilate", "butcher", "dismember", "poison", "drown", "shank", "massacre",
              "exterminate", "bludgeon", "knife", "slay", "slash", "waste",
              "kills", "murders", "stabs", "shoots", "strangles", "tortures", "slaughters", "beheads", "executes",
              "lynches", "poisons", "drowns", "slashes", "smother", "suffocate", "gut", "disembowel", "eviscerate",
              "impale", "crucify", "incinerate", "immolate", "garrote", "electrocute", "asphyxiate", "throttle",
              "curb[- ]stomp", "maul", "trample", "kneecap", "smothers", "guts")
STRONG_PAST = _alt("killed", "murdered", "stabbed", "shot", "strangled", "tortured", "slaughtered", "beheaded",
                   "decapitated", "executed", "lynched", "maimed", "mutilated", "butchered", "dismembered",
                   "poisoned", "drowned", "shanked", "massacred", "exterminated", "bludgeoned", "killing",
                   "murdering", "stabbing", "shooting", "strangling", "torturing", "slaughtering")
MODERATE = _alt("beat", "hit", "punch", "kick", "slap", "smash", "bash", "hurt", "harm", "injure", "attack",
                "assault", "choke", "whip", "stomp on", "stomp", "burn", "pistol[- ]whip", "pummel", "batter", "jump",
                "beats", "hits", "punches", "kicks", "hurts", "attacks", "chokes")
COMPLEMENT = re.compile(
    r"^\W*(?:[\w']+\W+){0,3}?(?:to death|to a pulp|senseless|unconscious|bloody|black and blue|half to death|"
    r"until (?:he|she|they|you|it|his|her|their|your)\b|till (?:he|she|they|you)\b|up\b|"
    r"with (?:a |an |my |his |her |their |your |these |this )?(?:bats?|hammers?|bricks?|pipes?|crowbars?|chains?|"
    r"knife|knives|rocks?|belts?|sticks?|clubs?|guns?|rifles?|axes?|machetes?|fists?)|"
    r"in the (?:face|head|throat|neck|gut|stomach|teeth|eyes?|balls|chest|back|ribs|skull))")
THREAT = re.compile(
    r"\b(?:i|we|i'm|we're|i'll|we'll|i'd|we'd|im|ima|gonna|going to|gon|will|shall|want to|wanna|swear|should|"
    r"must|need to|needs to|let's|let us|somebody|someone|go|gotta|got to|have to|has to|ought to|deserves? to|"
    r"about to|plan to|planning to|i'mma)\b")
NEG = re.compile(r"\b(?:not|never|no|nobody|none|nothing|neither|nor|without|avoid|avoiding|prevent|preventing|"
                 r"stop|refuse|cannot|no one|zero|free of|free from|against|anti)\b|n't\b")
BOUNDARY = re.compile(r"[,:;()\u2014\u2013\"]|\s-\s|\b(?:and|but|or|until|unless|because|so|then|otherwise|if|"
                      r"when|while|whereas|though|although|cause|before|after)\b")
THING_SUBJECT = re.compile(
    rf"^\s*(?:(?:it|this|that|these|those|which|they)\b|(?:the|this|that|these|those|our|your|my|their|its|a|an)\s+"
    rf"(?!(?:[\w'-]+\s+){{0,2}}?{PERSON_N}\b)[\w'-]+(?:\s+[\w'-]+){{0,2}}?)\s*"
    rf"(?:'ll\b|will|would|is|are|was|were|could|can|might|may|gonna|going to|is going to|are going to|'s|'re|must|"
    rf"won't|wont|can't|will not|cannot)\b")
MEDICAL = re.compile(r"\b(?:as (?:prescribed|directed)|with food|doctor'?s orders|pill organi[sz]ers?|pharmac\w+|"
                     r"refills?)\b")
CARE = re.compile(r"\b(?:seniors?|elderly|medical|police|security|airport|patients?|appointments?|errands|wheelchair|"
                  r"hospital|school|funeral|vip)\b")
PHOTO = re.compile(r"\b(?:photos?|photograph\w*|portraits?|pictures?|camera|lens|film(?:ed|ing)?|movie|video|"
                   r"footage|scenes?|episodes?|commercials?|campaign|selfies?|studio|on location|lookbook|catalog)\b")
META = re.compile(r"\b(?:myth|false|untrue|not true|wrong to|lie that|nonsense|debunk\w*|reject\w*|stop saying|"
                  r"never say|stereotype that|misconception)\b")
HELP_CONTEXT = re.compile(r"\b(?:prevention|awareness|hotline|crisis (?:line|text)|988|recover(?:y|ing)|support group|"
                          r"counsel(?:or|ors|ing)|therapists?|warning signs|researchers?|studied|study|statistics|"
                          r"rates?|deaths|according to|health department|survivors?|documentary|memoir|novel)\b")


# cues of a described sexual act; two different ones in a sentence make it explicit ("she moaned as he pulled
# her onto the bed and took her clothes off")
SEX_ACT = re.compile(
    r"\bmoan\w*|\bundress\w*|\b(?:took|take|takes|taking|rip\w*|pull\w*|tore|tear\w*|strip\w*) (?:off )?(?:her|his|my|your|"
    r"their) (?:clothes|shirt|panties|bra|dress|underwear|pants|knickers)(?: off)?|\bnaked\b|\bnude\b|\b(?:in|onto|into) "
    r"(?:the |my |your |his |her )?bed\b|\bspread (?:her|his|my|your) legs\b|\btouch(?:ed|ing|es)? (?:her|him|me|you|myself|"
    r"yourself)\b(?! up)|\bkiss(?:ed|ing)? (?:her|his|my|your) (?:neck|body|breasts|thighs|chest)\b|\bbreasts\b|\bthighs\b|"
    r"\blick\w*|\baroused\b|\bhorny\b|\berect\w*|\bclimax\w*|\bgrind\w*|\bstraddl\w+|\bbent (?:her|him|me|you) over\b|"
    r"\bwent at it\b|\b(?:rode|riding|ride) (?:him|her|me|you)\b|\bpull\w* (?:down|off) (?:her|his|my|your) (?:panties|"
    r"pants|underwear|bra|shorts|skirt|knickers)\b|\b(?:top|shirt|bra|dress|clothes|panties|underwear) (?:came|comes|come|slid|slipped) off\b|"
    r"\bevery inch of (?:my|your|her|his) body\b|\b(?:on|onto) (?:the |my |your |his |her )?(?:couch|desk|sofa)\b", re.I)


@dataclass
class Pattern:
    """One scored pattern: the category, the severity when it matches, and which context checks apply."""

    category: str
    severity: int
    rx: re.Pattern
    negatable: bool = True   # a negated clause ("don't", "never", "no one") drops it to Low
    hyperbole: bool = False  # a thing as subject ("this hill will kill you") drops it to Low
    check: Callable[[str, re.Match, str], bool] | None = None  # extra condition on (sentence, match, whole text)
    meta: bool = False       # meta speech ("it's a myth that ...") drops it to Low


def _p(category: str, severity: int, pattern: str, **kw) -> Pattern:
    return Pattern(category, severity, re.compile(pattern, re.I), **kw)


def _clause_before(sentence: str, start: int) -> str:
    head = sentence[:start]
    cuts = [m.end() for m in BOUNDARY.finditer(head)]
    return head[cuts[-1]:] if cuts else head


def _negated(sentence: str, m: re.Match) -> bool:
    words = _clause_before(sentence, m.start()).split()[-5:]
    return bool(NEG.search(" ".join(words)))


def _hyperbolic(sentence: str, m: re.Match) -> bool:
    return bool(THING_SUBJECT.match(_clause_before(sentence, m.start())))


def _after(sentence: str, m: re.Match) -> str:
    return sentence[m.end():]


def _person_target(sentence: str, m: re.Match, text: str = "") -> bool:
    """The target is a person (not "your family portraits"), and "shoot" is not photography."""
    if COMPOUND.match(_after(sentence, m)):
        return False
    return not (re.match(r"shoot|shot", m.group(0), re.I) and PHOTO.search(sentence))


def _moderate_ok(sentence: str, m: re.Match, text: str = "") -> bool:
    """An everyday verb (beat, hit, hurt) with a person is violence when a violent complement follows, or it is
    a threat or an imperative; "beat you to the summit" and "beat them at chess" are not."""
    if not _person_target(sentence, m):
        return False
    rest = _after(sentence, m)
    if re.match(r"^\s*(?:to (?!death|a pulp)|at\b|in (?:a|the) (?:race|game|match|final))", rest, re.I):
        return False
    if COMPLEMENT.match(rest):
        return True
    before = _clause_before(sentence, m.start()).strip()
    return not before or bool(THREAT.search(before)) or before in ("just", "now", "then", "please")


def _no_water_landing(sentence: str, m: re.Match, text: str = "") -> bool:
    return not re.search(r"\binto\b[^.]{0,25}\b(?:water|lake|sea|ocean|pool|river|bay|lagoon|waves)\b", _after(sentence, m))


def _not_ditransitive(sentence: str, m: re.Match, text: str = "") -> bool:
    """"cut yourself a slice", "cut yourself some slack": a benefactive, not an injury."""
    return not re.match(r"^\s*(?:a|an|some|one|another)\b", _after(sentence, m), re.I)


PATTERNS: list[Pattern] = [
    # ---------------------------------------------------------------- violence
    _p("violence", EXTREME, rf"\bshoot(?:ing)? up (?:{DET} )?(?:[\w-]+ )?{STRUCTURE}\b|\bmass (?:shooting|murder) (?:at|of)\b"),
    _p("violence", EXTREME, r"\b(?:kill|massacre|slaughter|shoot|murder) (?:as many (?:people )?as (?:you|i|we) can|everyone (?:in|at|inside))"),
    _p("violence", HIGH, rf"\b{STRONG} {TARGET}(?!'s|[\w-])", hyperbole=True, check=_person_target),
    _p("violence", HIGH, rf"\b(?:gun|mow|hunt|cut|shoot) (?:down )?{TARGET} down\b|\b(?:gun|mow|hunt) down {TARGET}(?!'s|[\w-])|"
       rf"\brun {TARGET} (?:over|down)\b", hyperbole=True, check=_person_target),
    _p("violence", HIGH, rf"\b{MODERATE} {TARGET}(?!'s|[\w-])", hyperbole=True, check=_moderate_ok),
    _p("violence", HIGH, r"\bslit (?:(?:his|her|their|your|the \w+'s|a \w+'s) )?throats?\b|\bgouge (?:out )?(?:his|her|their|your) eyes"),
    _p("violence", HIGH, r"\b(?:cut|chop|hack|rip|tear) (?:off |out )?(?:his|her|their|your|the \w+'s) (?:head|throat|fingers?|hands?|"
       r"tongue|ears?|arms?|legs?|balls|eyes?)(?: off| out)?\b"),
    _p("violence", HIGH, rf"\b(?:burn|bury|skin|cook|boil) {TARGET} alive\b|\bset {TARGET} (?:on fire|ablaze|alight)\b|"
       rf"\bset fire to {TARGET}\b|\bpour (?:gasoline|petrol|fuel|acid|bleach) (?:on|over) {TARGET}\b", check=_person_target),
    _p("violence", HIGH, r"\b(?:smash|bash|cave|crack|split|blow|stomp on|stomp|kick) (?:in )?(?:his|her|their|your|the \w+'s) "
       r"(?:skull|head|face|brains?|teeth)(?: in| open| out)?\b"),
    _p("violence", HIGH, r"\bput (?:a|one|two|some) (?:bullets?|slugs?|rounds?) (?:in|into|through) (?:his|her|their|your|the \w+'s|you|him|them)\b|"
       r"\bblow (?:his|her|their|your) (?:brains|head) (?:out|off)\b|\bthrow(?:ing)? acid (?:in|on|at)\b|"
       r"\bopen(?:ed|s)? fire (?:on|at|into)\b|\bbreak (?:every bone in )?(?:his|her|their|your) (?:legs?|neck|arms?|jaw|bones|"
       r"face|nose|ribs|skull|knees?|kneecaps|fingers)\b"),
    _p("violence", HIGH, rf"\b(?:bomb|firebomb|blow up|torch|burn down|set fire to|attack|shoot up|storm) (?:{DET} )?(?:[\w-]+ )?{STRUCTURE}\b|"
       rf"\bburn (?:{DET} )?(?:[\w-]+ )?{STRUCTURE} down\b"),
    _p("violence", HIGH, r"\b(?:how to|ways to|instructions (?:for|to)|steps to|guide to|recipe for|make|build|assemble|making|"
       r"building|assembling) (?:a |an |your own |homemade |some )?(?:pipe bombs?|nail bombs?|car bombs?|bombs?|ieds?|"
       r"explosive devices?|molotovs?(?: cocktails?)?|detonators?|napalm|ghost guns?|silencers?|"
       r"explosives?(?= *(?:that|which|to|from|with|using|at|out of|for|[.,;!]|$)))"),
    _p("violence", HIGH, r"\b(?:should|must|needs? to|ought to|deserves? to|has to|have to|gotta|will|is going to|are going to|"
       r"is getting|are getting|is gonna|are gonna|gonna) (?:all )?(?:be |get )?(?:(?:lined|rounded|dragged|taken) (?:up|out)(?: "
       r"(?:against the wall|back|outside))? and )?(?:shot|killed|murdered|stabbed|hanged|hung|"
       r"lynched|executed|gassed|beaten|tortured|burned alive|burnt alive|strung up|beheaded|slaughtered|butchered|"
       r"wiped out|exterminated|shot dead)\b", hyperbole=True, check=lambda s, m, _: not PHOTO.search(s)),
    _p("violence", HIGH, r"\b(?:deserves?|deserved) to die\b|\b(?:watch|see|make|let) (?:him|her|them|you|everyone|"
       r"those people) (?:die|bleed|suffer|burn|scream|beg for (?:mercy|their lives))\b", hyperbole=True),
    _p("violence", HIGH, rf"\bput {TARGET} in (?:the|a) (?:hospital|grave|ground|coffin|body bag|morgue)\b|"
       rf"\b(?:in|into) body bags?\b|\bbreak every bone\b"),
    _p("violence", HIGH, r"\b(?:smash|bash|cave|crack|split|bust|break|rip|tear|slit|gouge|cut|chop|hack|stomp|kick|punch|"
       r"slash|stab|shoot|burn|blow|slam) (?:in |open |out |off )?(?:his|her|their|your|the (?:[\w-]+ ){0,2}[\w-]+'s|every "
       r"one of their) (?:heads?|"
       r"skulls?|faces?|teeth|throats?|necks?|legs|arms|ribs|knees|kneecaps|jaws?|noses?|spines?|eyes|fingers|hands|brains|"
       r"guts|hearts?|chests?|bellies|stomachs?)(?: in| open| out| off)?\b", hyperbole=True),
    _p("violence", HIGH, rf"\b(?:throw|push|shove|toss|kick) {TARGET} (?:down (?:the|a|some) stairs|off (?:the|a) (?:bridge|roof|"
       rf"building|cliff|balcony|ledge|overpass)|out (?:the|a|of the) window|in front of (?:a|the) (?:train|bus|car|truck))\b|"
       rf"\b(?:make sure|see to it|ensure|guarantee)\b[^.]{{0,30}}\bnever (?:walks?|talks?|sees?|breathes?|wakes? up|comes? "
       rf"home|works?) again\b|\bdeserves? (?:a bullet|a beating|to be shot|to get shot|a knife)\b|\bwith (?:your|his|her|"
       rf"their) names? on (?:it|them)\b(?=[^.]*\b{WEAPON})|\b{WEAPON}\b[^.]*\bwith (?:your|his|her|their) names? on "
       rf"(?:it|them)\b|\b(?:going to|gonna|will|'ll) bleed for (?:it|this|that)\b|\b(?:douse|soak|drench|pour)\b[^.]{{0,40}}"
       rf"\b(?:gasoline|petrol|kerosene|lighter fluid|accelerant)\b[^.]{{0,40}}\b(?:light|ignite|torch|burn|set)\b"),
    _p("violence", HIGH, r"\b(?:stick|shove|jam|plunge|drive|sink|put|push|bury) (?:a|the|my|your|this|that|his|her) (?:knife|"
       r"blade|shank|screwdriver|ice pick|sword|machete|bullet|round|axe|spike) (?:in|into|through) (?:his|her|their|your|the "
       r"(?:[\w-]+ ){0,2}[\w-]+'s|him|them|you)\b|\bgets? (?:their|his|her|your) (?:legs?|arms?|necks?|skulls?|heads?|"
       r"knees?|kneecaps|fingers|hands|jaws?|teeth|ribs|faces?) (?:broken|smashed|snapped|cut off|blown off|caved in|bashed "
       r"in)\b|\bwith (?:you|him|her|them) (?:still )?(?:in it|inside|in there|locked inside)\b|\bburn(?:s|ed|ing)? alive\b|"
       r"\bi hope (?:you|he|she|they|your \w+|his \w+|her \w+)(?: \w+){0,4} (?:die|dies|burns?|rots?|suffers?|gets? "
       r"(?:shot|stabbed|killed|raped|hit by a (?:bus|car|truck)))\b"),
    _p("violence", HIGH, rf"\b(?:{STRONG}|{MODERATE}) (?:the |that |this |a |an |my |your |his |her |their |some )?(?:[\w'-]+ ){{1,3}}"
       rf"(?:until|till) (?:he|she|they)(?:'s| is| are|'re)? (?:can't|cannot|stops?|is dead|are dead|dies|die|bleeds?|passes "
       rf"out|begs?|screams?)\b", hyperbole=True),
    _p("violence", HIGH, rf"\btake (?:a|the|my|your) (?:bat|hammer|knife|crowbar|pipe|machete|axe|baseball bat|tire iron) to "
       rf"(?:his|her|their|your|him|them|you|the (?:[\w-]+ ){{0,2}}[\w-]+'s)\b|\bput (?:him|her|them|you|your \w+) (?:six feet "
       rf"under|in the ground|in a box)\b|\bstring (?:{TARGET}) up\b|\bstring up {TARGET}\b|\bpick (?:them|him|her|you|"
       rf"everyone) off\b(?=[^.]*\b(?:rifle|gun|scope|roof|one by one))|\bsnap (?:your|his|her|their) (?:neck|necks|spine|"
       rf"arms?|legs?)\b|\bknock (?:your|his|her|their) teeth (?:out|in|down)\b"),
    _p("violence", HIGH, r"\bstart (?:swinging|shooting|stabbing|slashing|firing|cutting)\b",
       check=lambda s, m, _: bool(re.search(rf"\b{WEAPON}\b", s))),
    _p("violence", HIGH, r"\byou(?:'re| are) (?:so |already |a )?dead(?: (?:man|meat|men))?\b(?! (?:tired|simple|easy|wrong|right|last))|"
       r"\b(?:won't|will not|wont|never) (?:survive|live through|make it home|see (?:tomorrow|the morning|another day))\b",
       hyperbole=True, negatable=False),
    _p("violence", HIGH, rf"\b(?:coming|come|going|go) (?:for|after) {TARGET}(?: and (?:your|his|her|their) [\w-]+)?(?: [\w-]+){{0,2}}"
       rf" with (?:a |an |our |my |the |some |loaded )*{WEAPON}\b|\b(?:pack|load|fill|rig|strap) (?:the|a|his|her|your|that|this) "
       rf"(?:car|truck|van|backpack|bag|vest|trunk) with (?:explosives|bombs?|dynamite|c-?4|nails|gasoline)\b|"
       rf"\bdrive (?:it|the car|the truck|a truck|a car|the van) (?:into|through) (?:the |a )?(?:crowd|parade|gates?|{STRUCTURE})\b"),
    _p("violence", MEDIUM, rf"\b{STRONG_PAST} {TARGET}(?!'s|[\w-])", check=_person_target),
    _p("violence", MEDIUM, r"\b(?:was|were|got|been|being|is|are) (?:brutally |badly |repeatedly )?(?:shot|stabbed|killed|"
       r"murdered|beaten|tortured|strangled|executed|lynched|massacred|slaughtered|beheaded|dismembered)\b",
       check=lambda s, m, _: not PHOTO.search(s)),
    _p("violence", MEDIUM, r"\b(?:murder(?:ed|s|ing)?|massacr\w+|slaughter(?:ed|ing)?|bloodbath|gunfire|gunm[ae]n|stabbings?|"
       r"stab wounds?|shooting spree|mass shooting|school shooting|bombings?|genocide|behead\w*|tortur\w+|"
       r"assault(?:ed|s)?|dismember\w*|brutal(?:ly)? (?:murder\w*|attack\w*|beat\w*|assault\w*|kill\w*|tortur\w*|rape\w*)|bludgeon\w*|mutilat\w+|serial killer|terror attacks?)\b"),
    _p("violence", MEDIUM, r"\b(?:broken|fractured|shattered) (?:jaw|nose|ribs|bones|skull|neck|eye socket)\b|"
       r"\b(?:violence|force|a beating) is (?:sometimes |always |often |the )?(?:only )?(?:the )?(?:answer|solution|way)\b|"
       r"\bbodies (?:were|are|lay|piled)\b"),
    _p("violence", LOW, r"\b(?:fight\w*|punch\w*|attack\w*|violent|violence|blood\w*|weapons?|guns?|rifles?|pistols?|"
       r"firearms?|grenades?|explosives?|knife|knives|swords?|wars?|battles?|robbery|murderer|killers?|shooting|"
       r"kill\w*|riot\w*|shot)\b", negatable=False),

    # ---------------------------------------------------------------- self-harm
    _p("self_harm", EXTREME, r"\b(?:kill(?:ed|ing)?|hang|hanged|shoot|shot|off|end|unalive) (?:yo)?urself\b|\bkys\b|\bend (?:it all|"
       r"your (?:own )?(?:life|miserable life))\b"),
    _p("self_harm", EXTREME, r"\byou (?:should|need to|ought to|better|deserve to) (?:just |go |all )?(?:die|not be alive|"
       r"not exist|stop breathing)\b|\b(?:go|just|please|pls) die\b|\bdie already\b|"
       r"\bwhy (?:don't|dont) you (?:just |go )?(?:die|kill yourself|disappear)\b", negatable=False),
    _p("self_harm", HIGH, r"\b(?:cut|hurt|harm|burn|starve|stab|drown|poison|punish|injure|choke|suffocate|strangle|"
       r"bleed|beat) (?:yo)?urself\b", check=_not_ditransitive),
    _p("self_harm", HIGH, r"\b(?:slit|cut|open) (?:your|ur|my|his|her|their) (?:own )?wrists?\b|\bwhere to cut (?:so|to|for|yourself|"
       r"myself)\b|\bcut (?:deeper|vertically|along the (?:vein|artery))\b|\bbleed (?:yourself )?out\b"),
    _p("self_harm", HIGH, r"\b(?:how|ways?|best way|easiest way|quickest way|fastest way|painless way|surest way|methods?|tips?|"
       r"guide|tricks?) (?:to|for|of) (?:kill(?:ing)? (?:myself|yourself|oneself|urself)|commit(?:ting)? suicide|"
       r"end(?:ing)? (?:my|your|one's) (?:own )?life|hang(?:ing)? (?:myself|yourself)|overdos(?:e|ing)|self[- ]?harm(?:ing)?|"
       r"cut(?:ting)? (?:myself|yourself)|hid(?:e|ing) (?:your |my |the )?(?:cuts|scars|self[- ]?harm|bruises)|"
       r"starv(?:e|ing) (?:myself|yourself)|purg(?:e|ing))\b", negatable=False),
    _p("self_harm", HIGH, r"\bhow many (?:\w+ ){0,2}(?:pills|tablets|capsules)\b[^.]{0,40}\b(?:overdose|die|kill|od|lethal|"
       r"not wake up|never wake up)\b|\blethal dose\b(?=[^.]{0,30}\b(?:you|yourself|myself|me)\b)", negatable=False),
    _p("self_harm", HIGH, r"\b(?:world|everyone|everybody|we|they|your (?:family|parents|friends)|people)(?: \w+)? (?:would|will|'d) "
       r"be (?:better off|happier|better) (?:without you|if you (?:were dead|died|were gone|killed yourself|"
       r"weren't (?:here|around|alive)))|\bbetter off dead\b", negatable=False),
    _p("self_harm", HIGH, r"\b(?:nobody|no one|noone)(?: \w+)? (?:would|will|'d|even)? ?(?:miss|care|cares|notice)s?\b[^.]{0,20}?"
       r"\bif you (?:die|died|were dead|killed yourself|were gone|disappeared)\b|\b(?:nobody|no one) (?:would|will) "
       r"(?:even )?miss you\b|\bdo (?:us|everyone|everybody|the world|us all|your family) a favou?r and (?:die|kill "
       r"yourself|disappear|end it)\b|\byou (?:don't|do not|dont) deserve to (?:live|be alive|exist|breathe)\b", negatable=False),
    _p("self_harm", HIGH, r"\b(?:drink|swallow|chug) (?:some |the |a )?(?:bleach|antifreeze|drain cleaner|poison)\b|"
       r"\b(?:take|swallow|down) (?:the whole|a whole|all (?:the|your|of your|of the|those|these)|every one of (?:your|the)) "
       r"(?:bottle of )?(?:pills|meds|medications?|tablets|sleeping pills|bottle)\b|"
       r"\boverdose on (?:your|the|those|these|some|all|my) (?:\w+ )?(?:meds|medications?|pills|tablets|prescription)\b|"
       r"\b(?:plastic bag|noose|rope|belt) (?:over|around) (?:your|ur|my) (?:head|neck)\b|"
       r"\blet yourself (?:waste away|die|starve|bleed)\b|\bwaste away\b", check=lambda s, m, _: not MEDICAL.search(s)),
    _p("self_harm", HIGH, r"\b(?:take|swallow|down|pop|eat) (?:all|the whole|a whole|an entire|every)\b[^.]{0,30}\b(?:pills|meds|"
       r"medications?|tablets|capsules|bottle)\b|\b(?:carve|cut|slice|burn|scratch)\b[^.]{0,30}\b(?:into|on|in) (?:your|my|ur) "
       r"(?:skin|thighs?|arms?|wrists?|legs?|body|stomach|flesh)\b|\b(?:need|needs|deserve|deserves) to bleed\b|"
       r"\b(?:rope|noose)\b[^.]{0,40}\b(?:kick|push) (?:the|that) (?:chair|stool)\b|"
       r"\b(?:best|easiest|quickest|fastest|surest|most painless|painless) (?:method|way|option)s?\b[^.]{0,20}\b(?:is|are) "
       r"(?:hanging|pills|cutting|jumping|drowning|overdos\w+|a gun|shooting yourself|carbon monoxide|bleach)\b|"
       r"\b(?:if|wish|when) you (?:just |would )?(?:stopped|stop) (?:existing|breathing|living)\b|\byou should (?:just )?stop "
       r"(?:existing|breathing|living)\b|\bstop existing\b",
       check=lambda s, m, _: not MEDICAL.search(s)),
    _p("self_harm", HIGH, r"\b(?:slit|cut|slice|burn|stab|carve|scratch|bruise|punch|hit|scar) (?:your|ur) (?:own )?(?:throat|"
       r"wrists?|arms?|legs?|thighs?|skin|stomach|face|body|chest|veins?)\b|\btie (?:a|the|your) noose\b|\bnoose\b[^.]{0,30}"
       r"\b(?:won't slip|neck|hang)\b|\b(?:vodka|alcohol|whiskey|booze|wine)\b[^.]{0,40}\b(?:pills|meds|antidepressants|"
       r"painkillers|sleeping pills|tablets)\b|\bi hope you (?:\w+ )?(?:die|kill yourself|hang yourself|never wake up)\b|"
       r"\b(?:don't|do not|never) eat (?:anything )?for (?:a|an|\d+|several|two|three|four|five|ten) (?:days?|weeks?|months?)\b|"
       r"\b(?:stop|quit) eating for (?:a|\d+|several) (?:days?|weeks?)\b|\bstop eating (?:entirely|completely|altogether|for "
       r"good)\b|\b(?:just end it|end it (?:tonight|already|now))\b|\b(?:cutting|hurting|burning|starving) "
       r"yourself\b[^.]{0,60}\b(?:feels? (?:so )?(?:good|great|amazing)|worth it|relief|how good)\b|\b(?:gulp|gulp down|chug|"
       r"down|drink|swallow) (?:a|the|some|this)? ?(?:bottle of |cup of |glass of )?(?:bleach|antifreeze|drain cleaner|rat poison)\b|\bgo (?:\w+ )?(?:days|weeks) without (?:eating|food)\b|"
       r"\b(?:hanging|hanging yourself|slitting your wrists|overdosing|cutting yourself|drowning yourself|suicide) (?:is|are) "
       r"(?:so |really |totally )?(?:painless|easy|quick|peaceful|beautiful|the answer|worth it)\b", negatable=False),
    _p("self_harm", HIGH, r"\bhang (?:yourself )?from (?:the|a) (?:rafters|ceiling|tree|beam|door|closet rod|banister)\b|"
       r"\bdo (?:the right thing|us a favou?r|everyone a favou?r|the world a favou?r|us all a favou?r) and (?:die|hang|jump|end|"
       r"kill|disappear|off)\b|\byou (?:should|need to|ought to|must|better) (?:just )?(?:disappear|vanish|go away) "
       r"(?:permanently|forever|for good)\b|\b(?:veins?|wrists?)\b[^.]{0,40}\b(?:blades?|razors?|slit|slic\w+|press the)\b|"
       r"\b(?:blades?|razors?)\b[^.]{0,40}\b(?:veins?|wrists?)\b|\b(?:cutting|burning|slicing) (?:your|my) (?:arms|wrists|"
       r"legs|thighs|skin|stomach)\b|\b(?:\d+|fifty|forty|thirty|twenty|a handful|dozens?|all|every one) of (?:your|the|my|his|"
       r"her|mom's|dad's) (?:\w+ )?(?:pills|antidepressants|meds|medications?|sleeping pills|painkillers|tablets|tylenol|"
       r"paracetamol|insulin|xanax|opioids)\b|\b(?:pills|antidepressants|meds|painkillers|sleeping pills|tablets|opioids)\b"
       r"[^.]{0,30}\b(?:vodka|alcohol|whiskey|booze|should do it|will do it|to end it|sleep forever|never wake up)\b|"
       r"\b(?:take|taking|swallow|swallowing|down|downing) (?:every|each) (?:single )?(?:pill|tablet)\b|\b(?:jump|step|leap|"
       r"dive|throw yourself|fall) (?:off|from) (?:the|a|that|this) (?:roof|rooftop|bridge|building|balcony|ledge|overpass|"
       r"tower)\b[^.]{0,30}\b(?:fly|won't feel|end it|die|gone)\b",
       check=lambda s, m, _: not MEDICAL.search(s)),
    _p("self_harm", HIGH, r"\b(?:purg\w+|starv\w+|throw(?:ing)? up|vomit\w*|laxatives?|diet pills|skipping meals|not eating|"
       r"refus\w+ (?:food|to eat)|fasting for (?:days|weeks|\w+ days))\b[^.;]{0,40}\b(?:thin|thinner|skinny|skinnier|bony|"
       r"weight off|clothes hang|see your (?:ribs|bones|hip ?bones)|hunger is weakness|every night|every day|after (?:every "
       r"meal|dinner|lunch|meals))\b|\bhunger is (?:weakness|just weakness)\b"),
    _p("self_harm", HIGH, r"\bjump (?:off|from) (?:the|a|that|this) (?:bridge|building|roof|rooftop|cliff|balcony|overpass|"
       r"tower|ledge)\b|\b(?:walk|step|run|jump) (?:out )?(?:into|in front of) (?:traffic|a (?:bus|train|truck|car))\b",
       check=_no_water_landing),
    _p("self_harm", HIGH, r"\bstarve yourself\b|\b(?:skip|stop eating) (?:every|all|your|each) (?:single )?meals?\b|"
       r"\bpurge (?:after|whatever|everything|what(?:ever)? you|every|all|your)\b|\b(?:throw up|vomit) (?:after (?:you eat|"
       r"eating|every meal|meals)|if you (?:eat|go over)|whatever you eat|everything you eat)\b|\bpro[- ]?(?:ana|mia)\b|"
       r"\bthinspo\b|\bthinspiration\b|\beat (?:under|less than|fewer than|no more than) \d{2,4} calories\b|"
       r"\b(?:chew gum|drink water|drink coffee|smoke) instead of eating\b|\bignore (?:the |your )?(?:hunger|dizziness|"
       r"fainting|hunger pangs)\b|\b(?:only|best|fastest|quickest) way to (?:get|be|stay|become) (?:skinny|skinnier|thin|"
       r"thinner|bony)\b|\bhid(?:e|ing) (?:your |the |my )?(?:weight loss|not eating|eating disorder|purging|cuts|scars) from\b|\buntil you can see your (?:ribs|bones|hip ?bones|"
       r"collarbones?|spine)\b"),
    _p("self_harm", HIGH, r"\b(?:suicide|self[- ]?harm(?:ing)?|cutting|starving|purging|killing yourself|overdosing|dying) "
       r"(?:is|are) (?:the |your |my |a )?(?:only |best |real |easiest |great |good |healthy |perfect |easy )?(?:answer|"
       r"solution|way out|way to (?:cope|release|relieve|deal|feel)|best way|only way|only thing|cure|escape)\b|\bkeep (?:cutting|self[- ]?harming|purging|starving)\b|"
       r"\b(?:self[- ]?harm|cutting)\b[^.]{0,30}\btry it\b", negatable=False),
    _p("self_harm", HIGH, r"\b(?:i'm|i am|im|i will|i'll|i'm going to|i am going to|gonna|i plan to|i'm planning to|"
       r"tonight i(?:'ll| will)?|i've decided to|i'm about to|i want to)\s+(?:\w+\s+)?(?:kill(?:ing)? myself|"
       r"end(?:ing)? (?:my (?:own )?life|it all)|commit(?:ting)? suicide|hang(?:ing)? myself|tak(?:e|ing) my (?:own )?life|"
       r"overdos(?:e|ing))\b|\bi have the (?:rope|pills|gun|noose|blade) ready\b"),
    _p("self_harm", MEDIUM, r"\bsuicid(?:e|al)\b(?! (?:prevention|awareness|hotline|crisis|risk))|\bself[- ]?harm(?:ing)?\b|"
       r"\b(?:cutting|cut|hurt(?:ing)?|harm(?:ing)?|kill(?:ing|ed)?|starv(?:ing|ed)|burn(?:ing|ed|t)?) (?:myself|himself|"
       r"herself|themselves)\b|\bend(?:ing)? my (?:own )?life\b|\btake my (?:own )?life\b|\bwant(?:ed)? to die\b|"
       r"\bwish (?:i|i'd) (?:was|were|had) (?:dead|never been born)\b|\bnever wake up\b|\b(?:no|see the|don't see the) "
       r"(?:point|reason) (?:in|of|to) (?:living|live|being alive|going on)\b|\btried to (?:overdose|kill myself|end my life)\b|"
       r"\boverdos(?:e|ed|ing)\b|\b(?:cut|burn(?:ed|t)?|hurt|hit|scratch(?:ed)?) (?:my|her|his) (?:\w+ )?on purpose\b|"
       r"\buntil (?:it|they|i) bleeds?\b|\bthoughts of (?:ending|killing|hurting)\b|\btalked about (?:killing|ending|hurting)\b",
       check=lambda s, m, _: not HELP_CONTEXT.search(s)),
    _p("self_harm", LOW, r"\b(?:suicid\w*|self[- ]?harm\w*|self[- ]injur\w*|hopeless|worthless|depress(?:ed|ion)|eating disorders?|"
       r"overdos\w*|crisis line|mental health)\b", negatable=False),

    # ---------------------------------------------------------------- sexual
    _p("sexual", EXTREME, r"\b(?:child|children|kids?|minors?|underage|under-age|preteens?|pre-teens?|teens?|teenagers?|"
       r"schoolgirls?|schoolboys?|young (?:girls|boys)|little (?:girls|boys)|\d{1,2}[- ]?(?:yo|year[- ]olds?))\b[^.!?]{0,40}"
       r"\b(?:porn\w*|nudes|(?:nude|naked|sexual|sex|explicit|xxx|erotic) (?:photos?|pics?|pictures?|images?|videos?|content|"
       r"acts?|abuse material)|sex with|having sex|erotic\w*|xxx)\b|\b(?:porn\w*|nudes|(?:nude|naked|sexual|sex|explicit|xxx|"
       r"erotic) (?:photos?|pics?|pictures?|images?|videos?|content|acts?)|sex with|erotic\w*)\b[^.!?]{0,40}\b(?:child|"
       r"children|kids?|minors?|underage|under-age|preteens?|teens?|teenagers?|schoolgirls?|young (?:girls|boys)|little "
       r"(?:girls|boys))\b"),
    _p("sexual", HIGH, r"\bporn\w*\b|\bxxx(?:[- ]rated)?\b(?= *(?:videos?|movies?|films?|sites?|content|pics|photos|webcams?|"
       r"cams?|shows?|rated|chat|action|clips?|stars?))|\bxxx[- ]rated\b|\bnudes\b|\bnude (?:pics?|photos?|pictures?|"
       r"selfies?|videos?|images?|girls?|women|woman|men|models?|cams?|shots|scenes|dancing|dancers?)\b|\b(?:naked|nude) "
       r"(?:bodies|body|girls?|women|woman|men|pics?|photos?|pictures?|selfies?|videos?|images?|on (?:camera|cam|video))\b|"
       r"\bget (?:naked|nude)\b(?![-\w])|\bstrip (?:naked|nude|for (?:me|you|us|the camera))\b"),
    _p("sexual", HIGH, r"\b(?:have|having|had|has|want|wants|wanted|for|pay for|paid for|casual|no[- ]strings|group|oral|anal|"
       r"phone|live|explicit|graphic|rough|kinky|hot|dirty|hardcore|unprotected|wild|filthy) sex\b(?![-\w])|\bsex (?:tapes?|"
       r"videos?|vids?|chat|cams?|shows?|scenes?|acts?|party|parties|positions?|slaves?|dolls?|pics?|photos?|clips?|games?|"
       r"with (?:you|me|her|him|strangers|them))\b|\bsexual (?:services|favou?rs|acts?|intercourse|content|photos?|images?|"
       r"pictures?|videos?|positions?|fantas(?:y|ies)|pleasure|encounters?)\b"),
    _p("sexual", HIGH, r"\bescorts? (?:service|services|agency|agencies)\b", check=lambda s, m, _: not CARE.search(s)),
    _p("sexual", HIGH, r"\b(?:intercourse|orgasm\w*|masturbat\w*|blowjobs?|handjobs?|cumshots?|erotic\w*|hookers?|prostitut\w*|"
       r"call girls?|cam ?girls?|cam ?boys?|webcam (?:girls?|models?|shows?)|milfs?|sexting|sext|camsex|"
       r"escorts? (?:girls?|available|near you)|(?:our|hot|local|cheap|independent) escorts|"
       r"rape\w*|raping|used (?:panties|underwear)|adult (?:sites?|videos?|movies?|films?|entertainment|webcams?|cams?|"
       r"chat ?rooms?))\b"),
    _p("sexual", HIGH, r"\b(?:hentai|nsfw|smut\w*|x-rated|lewd|swingers?|partner[- ]swap\w*|wife[- ]swap\w*|swap partners|"
       r"jerk(?:ing)?[- ]off|jack(?:ing)?[- ]off|wank\w*|upskirts?|downblouse|creepshots?|voyeur\w*|peeping toms?)\b|"
       r"\b(?:nude|naked|topless|bottomless|undressed|unclothed|explicit|lewd) (?:pics?|photos?|pictures?|selfies?|videos?|vids?|"
       r"clips?|images?|galleries|gallery|cams?|shows?)\b|\bsee (?:me|her|him|you|them) (?:naked|nude|undressed|topless)\b|"
       r"\bget (?:fully |completely |totally |all |stark )?(?:naked|nude|undressed)\b(?![-\w])|\b(?:want|wants|wanna|"
       r"going|dying|ready|waiting|looking) to sleep with (?:you|me|her|him)\b|\bsleep with (?:you|me|her|him) tonight\b|"
       r"\b(?:naked|nude|topless) (?:teens?|minors?|kids|children|schoolgirls?|underage)\b|\b(?:paid|private|discreet) companionship\b|\b(?:massage|companionship|"
       r"session|escorts?|girls)\b[^.]{0,50}\b(?:happy endings?|full service|extras)\b|\b(?:secretly|hidden[- ]cam\w*|spy[- ]?cam\w*)\b[^.]{0,20}\b(?:filmed|"
       r"recorded|videos?|clips?|footage)\b[^.]{0,40}\b(?:changing rooms?|locker rooms?|showers?|bathrooms?|toilets?|dressing "
       r"rooms?)\b"),
    _p("sexual", HIGH, r"\b(?:threesomes?|foursomes?|orgy|orgies|gang ?bangs?)\b|\b(?:casual|no[- ]strings|anonymous|discreet) "
       r"hook-?ups?\b|\bhook-?up (?:sites?|apps?|tonight)\b|\bundress(?:es|ed|ing)? (?:me|you|her|him)\b|\b(?:touch|touching|"
       r"play with|playing with|pleasure|pleasuring) (?:yourself|myself)\b|\btouch(?:ing)? (?:me|you|her|him) all over\b|"
       r"\bfondl\w+|\bgrop(?:e|ed|es|ing)\b|\bwent down on (?:him|her|me|you)\b|\b(?:dick|cock|pussy|tits|boobs)\b[^.]"
       r"{0,15}\b(?:suck\w*|lick\w*|fuck\w*|rid\w+|touch\w*)\b|\b(?:suck|lick|fuck|ride)\w* (?:my|your|his|her) (?:dick|cock|pussy|"
       r"tits|boobs)\b|\bfuck (?:me|you|her|him)\b(?! (?:up|over|off))|\b(?:dance|dancing|strip) (?:and dance )?naked\b|"
       r"\bstrip and dance\b|\b(?:touch|lick|kiss|taste)\w* (?:me|you|her|him) all over\b|\bundress(?:es|ed|ing)? (?:slowly|for (?:me|you|the camera)|while)\b|"
       r"\b(?:pics?|pictures?|photos?|videos?|selfies?|nudes) of (?:your|her|his|my) (?:boobs|tits|breasts|nipples|genitals|"
       r"penis|vagina|dick|cock|pussy|ass|butt|naked body)\b|\badult (?:fun|services|dating|content creators?)\b"),
    _p("sexual", EXTREME, r"\b(?:trade|trading|swap|swapping|share|sharing|sell|selling|buy|buying) (?:\w+ )?(?:pics|photos|"
       r"videos|images|content|nudes) of (?:\w+ )?(?:teens?|teenagers?|underage|minors?|children|kids|schoolgirls?|"
       r"young (?:girls|boys)|little (?:girls|boys))\b|\b(?:child|children|kids?|minors?|underage|preteens?|teens?|schoolgirls?)"
       r"(?: models?)?\b[^.]{0,20}\b(?:posing|pose|photographed|filmed) (?:nude|naked|topless)\b|"
       r"\b(?:school ?uniforms?|schoolgirls?|underage|minors?|preteens?)\b[^.]{0,40}"
       r"\bposing (?:in|for)\b[^.]{0,20}\b(?:underwear|lingerie|bikinis?|members|nothing)\b"),
    _p("sexual", HIGH, r"\b(?:send|show|flash|pics? of|photos? of|touch|lick|suck) (?:me |us )?(?:your |my |her |his )?(?:genitals?|"
       r"penis|vagina|dick|cock|pussy|boobs|tits|breasts|nipples)\b|\bforced (?:her|him|them|me) (?:to have sex|into sex)\b"),
    _p("sexual", HIGH, SEX_ACT.pattern, check=lambda s, m, _: len({c.group(0) for c in SEX_ACT.finditer(s)}) >= 2),
    _p("sexual", MEDIUM, r"\bsexy\b(?= (?:singles|girls?|women|woman|men|guys?|babes?|models?|pics?|photos?|selfies?|teens?|"
       r"milfs?|moms?|wives|nurses?|bodies|body|lingerie))|\b(?:seductive|horny|aroused|arousal|kinky|racy|raunchy|topless|"
       r"bottomless|lingerie models?|see[- ]through|strip ?teases?|strippers?|strip clubs?|lap dances?|pole danc\w+|"
       r"fetish\w*|bdsm|bondage|making out|make out|nudity|full[- ]frontal|talk dirty|sex toys?|sex workers?)\b|"
       r"\bturns? (?:you|me|him|her) on\b|\bsteamy (?:romance|scenes?|night|affair|photos?|encounter|novel)\b|"
       r"\bsuggestive (?:poses?|photos?|pictures?|dancing)\b|\bnaughty (?:pics?|photos?|girls?|nurse|secretary|videos?|chat)\b|"
       r"\bbedroom (?:toys?|fun|games?|scenes?|play|antics)\b|\bhook(?:ing)? ?up (?:with )?(?:you|me|singles|strangers|"
       r"tonight|local \w+)\b|\b(?:in|to) bed with (?:me|you)\b|\bsex\b"),
    _p("sexual", LOW, r"\b(?:flirt\w*|intimate|intimacy|sensual\w*|romantic|romance|kiss\w*|innuendo|nude|naked|lingerie|sexual\w*|"
       r"sexy|affairs?|cleavage|low-cut|puberty|reproduction|wedding night|dating)\b", negatable=False),

    # ---------------------------------------------------------------- hate
    _p("hate", HIGH, rf"\b{GROUP}(?: (?:who|that)(?: [\w']+){{1,3}})? (?:are|is|r|were|'re)(?: (?:all|just|simply|basically|"
       rf"nothing but|no better than|like|a bunch of|a pack of|such|so|truly|really|naturally|inherently|always|"
       rf"genetically|by nature|literally|potential))* (?:[\w-]+ ){{0,3}}?(?:vermin|locusts|bugs|termites|rodents|swarm|"
       rf"horde|groomers?|(?:a )?burden|bombers?|terrorist|criminal|rapist|thief|pedophile|animal|parasite|rat|savage|"
       rf"invader|pig|dog|ape|monkey|snake|cockroach|thugs?|defects?|sick|sick in the head|cows|bitches|whores|sluts|"
       rf"breeders|mongrels|worthless|useless|savages|animals|beasts|subhuman|sub-human|rats|cockroaches|roaches|"
       rf"parasites|leeches|insects|lice|maggots|pigs|dogs|apes|monkeys|savages|barbarians|filth|filthy|scum|trash|garbage|"
       rf"(?:a )?disease|diseased|(?:a )?virus|(?:a )?plague|(?:a )?cancer|(?:an )?infestation|inferior|less than human|not "
       rf"(?:even )?human|not people|evil|demons?|snakes|vipers|sheep|property|defective|mentally ill|freaks|perverts|"
       rf"degenerates|(?:an )?abominations?|useless eaters|(?:a )?drain|invaders|criminals|rapists|terrorists|thieves|"
       rf"pedophiles|paedophiles|murderers|drug dealers|less intelligent|breeding like \w+)\b", meta=True, negatable=False),
    _p("hate", HIGH, rf"\b{GROUP}\b[^.!?;]{{0,40}}?\blike (?:rats|vermin|animals|cockroaches|roaches|dogs|locusts|insects|"
       rf"parasites|rabbits|a plague|a disease|a virus|cattle|savages)\b|\b{GROUP} belongs? in (?:cages|a cage|zoos?|chains|"
       rf"camps|prisons?|jail|the gutter|the trash|ovens|gas chambers)\b|\b(?:criminal|inferior|mongrel|degenerate) races?\b|"
       rf"\bsend (?:all |every |the |those |these |all the )*{GROUP} (?:back )?(?:home )?(?:in body bags|in coffins|dead)\b",
       meta=True, negatable=False),
    _p("hate", MEDIUM, rf"\bsend (?:all |every |the |those |these |all the )*{GROUP} back\b|\bkeep (?:the |all |those |these )?"
       rf"{GROUP} out\b|\b{GROUP} belongs? in the kitchen\b", meta=True, negatable=False),
    _p("hate", HIGH, rf"\bthe only good {GROUP_SINGULAR}s? (?:is|are) (?:a )?dead\b|\b{GROUP}\b[^.;]{{0,30}}?\b(?:all )?(?:carry|spread|bring|"
       rf"are carrying|are spreading) (?:plagues?|diseases?|viruses?|germs|filth|lice)\b", meta=True, negatable=False),
    _p("hate", HIGH, r"\b(?:they(?:'re| are)|theyre|these people are|those people are)(?: all| just| nothing but)* (?:[\w-]+ )?"
       r"(?:vermin|animals|rats|cockroaches|parasites|savages|subhuman|scum|filth|rapists|terrorists|criminals|thugs|"
       r"invaders|diseased|a disease|a plague|a cancer|leeches|pigs|dogs|apes)\b", meta=True, negatable=False,
       check=lambda s, m, text: bool(re.search(rf"\b{GROUP}\b", text))),
    _p("hate", HIGH, rf"\b(?:kill|exterminate|eliminate|wipe out|get rid of|eradicate|purge|gas|deport|expel|round up|lynch|"
       rf"hang|shoot|burn|drive out|hunt down|cleanse (?:[\w']+ ){{0,3}}of) (?:all |every |every last |every single |the |"
       rf"those |these |all the |all of the )?(?:[\w-]+ )?{GROUP}\b", meta=True, negatable=False),
    _p("hate", HIGH, rf"\b{GROUP}\b[^.!?;]{{0,60}}?\b(?:should|must|need to|needs to|ought to|deserve to|deserves to|have to|"
       rf"has to|gotta)(?: all)?(?: have been| be| get)? (?:deported|purged|hunted|aborted|exiled|caged|exterminated|eliminated|removed|wiped (?:out|off)|gassed|killed|"
       rf"shot|hanged|hung|lynched|locked up|sterilized|sterilised|banned|expelled|thrown out|driven out|burned|hunted down|"
       rf"rounded up|beaten|kicked out|sent back|cleaned out|cleansed|punished|enslaved|put in camps|die|rot|cured|"
       rf"fixed|converted|re-?educated|put down|gassed again|thrown off (?:rooftops|roofs|buildings|bridges|cliffs)|"
       rf"left to (?:die|rot|starve)|shot on sight|driven into the sea|euthani[sz]ed|eradicated|wiped from the earth|"
       rf"loaded (?:onto|on|into) (?:trains|cattle cars|trucks)|"
       rf"(?:put|sent|thrown) (?:in|into|to) (?:camps|ovens|gas chambers|the ovens)|kept (?:at "
       rf"home|in (?:their|the) place|in the kitchen))\b", meta=True, negatable=False),
    _p("hate", HIGH, rf"\b{GROUP}\b[^.!?;]{{0,60}}?\b(?:should not|shouldn't|must not|do not|don't|does not|doesn't|should never|"
       rf"must never) "
       rf"(?:be allowed to |have the right to )?(?:deserve (?:to live|to exist|rights|to vote|respect|to breathe|to be here|"
       rf"human rights|basic rights)|vote|exist|live|breed|marry|have rights|have children|own (?:property|land|homes?|"
       rf"businesses)|hold office|lead|work|drive|travel|enter)\b", meta=True, negatable=False),
    _p("hate", HIGH, rf"\b(?:white|aryan|black|jewish|our|the \w+) race (?:is|are) (?:superior|supreme|the master race|pure|"
       rf"better)\b|\bbreeding like (?:rabbits|rats|animals|cockroaches|vermin)\b|\b(?:to replace|replacing|will not "
       rf"replace|won't replace) us\b|\bgreat replacement\b|\bwhite genocide\b|\brace war\b|\bracial purity\b|"
       rf"\bmaster race\b|\bwhite power\b|\bethnic cleansing\b|\bsubhuman\b|\buntermensch\b|\binferior races?\b|"
       rf"\bgo back to (?:your|their|where (?:you|they) came from)(?: own)?(?: country| countries| jungle)?\b|"
       rf"\b(?:filthy|dirty|stinking|disgusting) (?:foreigners?|immigrants?|jews?|muslims?|mexicans?|arabs?|gays?|"
       rf"africans?|asians?|gypsies|gypsy|refugees?)\b|\b{GROUP}\W+(?:\w+\W+){{0,3}}(?:or|and) (?:dogs|pigs|rats|animals)\b|"
       rf"\bcleanse (?:this|our|the) (?:country|nation|city|town|land|neighbou?rhood)\b", meta=True, negatable=False),
    _p("hate", MEDIUM, rf"\b(?:i|we) (?:hate|despise|can't stand|cannot stand|loathe) (?:all |the |those |these )?{GROUP}\b|"
       rf"\b(?:we|i)(?: \w+)? (?:don'?t|do not|won'?t|will not|would never|'d never|never|refuse to|rather not) (?:hire|"
       rf"serve|rent|sell|date|trust|allow|let in|work with|employ|accept)(?: [\w']+){{0,4}}? (?:to |any |a |an )?{GROUP}\b|"
       rf"\b{GROUP} (?:make|makes) me (?:uncomfortable|sick|nervous|angry)\b|\b{GROUP} (?:ruin|ruins|ruined|destroy|"
       rf"destroys|are ruining|are destroying|are stealing|steal|stole|are taking) (?:every|our|the|this)\b|"
       rf"\b{GROUP} (?:aren'?t|are not|isn'?t) (?:real|true|normal|natural) (?:women|men|people|humans|americans|citizens)\b|"
       rf"\bno {GROUP}(?:,? (?:or|and) \w+)* (?:allowed|welcome|permitted)\b|\bthose people are all\b|"
       rf"\b{GROUP} (?:are|is) (?:just |simply |all |so |too |naturally )?(?:not (?:smart|intelligent|capable) enough|"
       rf"too emotional|lazy|stupid|dumb|greedy|cheap|loud|ugly|violent|dangerous|untrustworthy|dishonest|liars|bad drivers|"
       rf"terrible drivers|bad at \w+|terrible at \w+|all the same|backward|primitive|smelly)\b|"
       rf"\b{GROUP} (?:shouldn'?t|should not) be allowed\b|\b{GROUP} (?:don'?t|do not) belong\b", meta=True, negatable=False),
    _p("hate", LOW, r"\b(?:stereotyp\w*|discriminat\w*|racis[mt]\w*|antisemit\w*|bigot\w*|hate crimes?|segregat\w*|bias|"
       r"xenophob\w*|homophob\w*|transphob\w*|offensive jokes?|slurs?)\b", negatable=False),
]


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"[ \t]+", " ", text).lower()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


def _severity(p: Pattern, sentence: str, m: re.Match, text: str = "") -> int:
    if p.check and not p.check(sentence, m, text):
        return 0
    if p.negatable and _negated(sentence, m):
        return LOW
    if p.hyperbole and _hyperbolic(sentence, m):
        return LOW
    if p.meta and META.search(sentence[:m.start()]):
        return LOW
    return p.severity


def explain(text: str) -> list[tuple[str, int, str]]:
    """(category, severity, matched text) for every pattern that matched: why `harm_scores` said what it said."""
    found = []
    cleaned = IDIOM.sub(" ", _normalize(text))
    for sentence in _sentences(cleaned):
        for p in PATTERNS:
            for m in p.rx.finditer(sentence):
                sev = _severity(p, sentence, m, cleaned)
                if sev:
                    found.append((p.category, sev, m.group(0)))
    return found


def harm_scores(text: str) -> dict[str, int]:
    """Severity 0-7 per category for `text`, after removing known marketing idioms."""
    scores = dict.fromkeys(HARM_CATEGORIES, 0)
    for category, sev, _ in explain(text):
        scores[category] = max(scores[category], sev)
    return scores
