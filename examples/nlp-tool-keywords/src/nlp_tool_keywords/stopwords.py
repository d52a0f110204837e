"""English stopwords: the words that split text into RAKE candidate phrases.

Function words (articles, pronouns, prepositions, conjunctions, auxiliaries,
common adverbs), their contractions, and the most frequent "light" verbs
(say, make, use, find, need...): without those, phrases run on through the
verb ("keyword extraction needs"). A short list keeps more content in the
phrases; RAKE's own paper used Fox's longer list. Lower case, straight
apostrophes (the extractor normalises curly ones before looking words up).
"""

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above across after again against all almost along already also
    although always am among an and another any anyone anything are around as
    at be became because become becomes been before being below between both
    but by can cannot could did do does doing done down during each either
    else enough even ever every few for from further get gets got had has
    have having he her here hers herself him himself his how however i if in
    into is it its itself just least less many may me might more most much
    must my myself neither no nor not now of off often on once one only onto
    or other others our ours ourselves out over own per perhaps quite rather
    same several shall she should since so some something still such than
    that the their theirs them themselves then there therefore these they
    this those though through thus to too toward towards under until up upon
    us very via was we well were what whatever when where whether which while
    who whom whose why will with within without would yet you your yours
    yourself yourselves
    aren't can't couldn't didn't doesn't don't hadn't hasn't haven't he'd
    he'll he's i'd i'll i'm i've isn't it's let's mustn't shan't she'd
    she'll she's shouldn't that's there's they'd they'll they're they've
    wasn't we'd we'll we're we've weren't what's who's won't wouldn't you'd
    you'll you're you've
    came come comes coming find finds finding found gave give given gives
    giving go goes going gone keep keeps kept know knew known knows let
    made make makes making need needed needs put puts said say says saw see
    seen sees seem seemed seems show showed shown shows take takes taken
    took use used uses using want wanted wants went
    """.split()
)
