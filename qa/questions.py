"""What a question asks for, read from its words: its shape (a phrase, or sentences), an overview's topic, and
for a follow-up, what to search and what the reader reads, given the conversation so far."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import InvalidQuestionError
from .generation import REWRITE_PROMPT, Generator

# The shape of a question

WORD = re.compile(r"\w+", re.UNICODE)
FUNCTION_WORDS = frozenset("""a an the of in on at to for from by with about as is are was were be been being do does
did what which who whom whose when where why how that this these those it its and or but not no if than then
there their they them he she his her we our you your i me my can could would should will shall may might must
has have had into onto over under up down out off so such very just also any some""".split())

_DESCRIPTIVE = re.compile(
    r"""^\W*(?:
        why\b | explain\b | describe\b | summari[sz]e\b | tell\s+me\b | give\s+me\b | what\s+about\b
      | how\b(?!\s+(?:many|much|long|old|far|big|large|often|tall|high|soon|deep|wide|fast|early|late)\b)
      | (?:what|which)\s+(?:are|were)\s+the\s+(?:different|various|main|key|major|possible|other)\b
      | what\s+(?:is|are|was|were)\s+(?:(?:a|an|the)\s+)?[\w-]+(?:\s+[\w-]+)?\s*\??\s*$
      | what\s+(?:do|does|did|should|can|could|would|will)\s+(?:i|we|you|one)\b
      | what\s+(?:happens|if)\b
      | (?:can|could|do|does|did|is|are|was|were|should|will|would|may|must|has|have)\s+(?:i|we|you|my|one)\b
    )""", re.IGNORECASE | re.VERBOSE)


_OVERVIEW = re.compile(
    r"""^\W*(?:please\s+)?
        (?:summari[sz]e|describe|explain|tell\s+me(?:\s+(?:a\s+(?:bit|little)\s+)?more)?(?:\s+about)?
          |give\s+(?:me\s+)?an?\s+overview\s+of|(?:a\s+(?:bit|little)\s+)?more\s+(?:about|on)
          |(?:which|what)\s+(?:articles?|documents?|texts?|stories|story|sources?|files?|pages?)\s+
           (?:(?:talks?|mentions?|discuss(?:es)?|covers?|deals?|reports?|writes?)(?:\s+(?:about|on|of|with))?
            |(?:is|are)\s+(?:about|on)))
        \s+(?:what\s+(?:the\s+)?(?:articles?|texts?|documents?|sources?)\s+(?:says?|tells?|reports?)\s+(?:about|on)\s+)?
        (?P<topic>.+?)\W*$""", re.IGNORECASE | re.VERBOSE)


def overview_topic(question: str) -> str | None:
    """"Al Tanf" for "Summarize what the articles say about Al Tanf." or "Which article mentions Al Tanf?": an
    overview request names a topic, and the request's own words ("summarize", "articles", "say") only blur search
    and reading. The sentences that name it answer, each citing its article."""
    m = _OVERVIEW.match(question.strip())
    return m.group("topic") if m and content_words(m.group("topic")) - _CORPUS_WORDS - {"more"} else None


# Words that name the indexed texts themselves: "Summarize the articles" asks about them all, not about a topic
# that sentences naming "articles" would cover.
_CORPUS_WORDS = frozenset("article articles text texts document documents source sources file files story stories "
                          "page pages corpus collection folder all both three each".split())


# Words of a request for an overview of the indexed texts as a whole ("What are these articles about?",
# "Summarize the articles", "Give me an overview"): beside them such a request names nothing to search for.
_COLLECTION_CUE = re.compile(r"\b(?:summar\w*|overview|recap|gist|rundown|outline|tl\W?dr|about|main|key|say|says|"
                             r"cover|covers|discuss|discusses|here|list|titles)\b", re.IGNORECASE)
# Cues only beside a word for the texts: "What articles do you have?", not "What have they said?".
_COLLECTION_WEAK_CUE = re.compile(r"\b(?:there|have|show|available|indexed)\b", re.IGNORECASE)
_REQUEST_WORDS = frozenset("""summarize summarise summary summaries overview recap gist rundown outline sum tl dr
main key central general overall whole brief briefly short quick quickly please give show tell me say says said
cover covers discuss discusses point points topic topics idea ideas theme themes takeaway takeaways subject
subjects message mainly s here what's first second third fourth fifth last list titles available indexed""".split())
_ORDINAL = re.compile(r"\b(first|second|third|fourth|fifth|last)\s+(?:article|document|text|story|file|page|source)\b",
                      re.IGNORECASE)
_ORDINAL_ONE = re.compile(r"\b(first|second|third|fourth|fifth|last)\s+one\b", re.IGNORECASE)


def article_ordinal(question: str, one: bool = False) -> int | None:
    """Which article a request names by its place, in file-name order: 0 for "the first article", -1 for "the
    last article"; None when it names none. With ``one``, "the second one" too (said after an overview)."""
    m = _ORDINAL.search(question) or (_ORDINAL_ONE.search(question) if one else None)
    if m is None:
        return None
    word = m.group(1).lower()
    return -1 if word == "last" else ["first", "second", "third", "fourth", "fifth"].index(word)


def collection_request(question: str, history: Any = None) -> bool:
    """A request for an overview of the indexed texts themselves, naming no topic: "What are these articles
    about?", "Summarize the articles", "Give me an overview". Search has nothing to look for in it (on the seeds
    it found the one line naming "articles": a Telegram promotion), so it is answered with each article's opening
    (:func:`qa.answering.overview`). In a conversation only when it names the texts ("What do the articles say?"):
    there "What is this about?" may ask about the last answer. It matches none of about 100,000 held-out
    questions (SQuAD, SelQA dev, doc2dial turns) nor of the public test sets (bench/overview.py)."""
    earlier = previous_questions(history)
    if _about_the_articles(question, bool(earlier)):
        return True
    # Right after an overview of them all, "Tell me more about the second one" names an article by its place.
    return (isinstance(question, str) and bool(earlier) and _about_the_articles(earlier[-1], len(earlier) > 1)
            and article_ordinal(earlier[-1]) is None and article_ordinal(question, one=True) is not None
            and not content_words(question) - _REQUEST_WORDS - _CORPUS_WORDS - {"more", "one"})


def asks_how_many_articles(question: str) -> bool:
    """"How many articles are there?": a request about the articles as a whole that asks for their number."""
    return bool(_HOW_MANY.match(question))


_HOW_MANY = re.compile(r"^\W*how\s+many\s+(?:articles|documents|texts|files|stories|sources|pages)\b"
                       r"(?:\s+(?:are\s+(?:there|here|indexed|available|in\s+here)|do\s+you\s+have|have\s+you\s+got))?"
                       r"\W*$", re.IGNORECASE)


def _about_the_articles(question: Any, in_conversation: bool) -> bool:
    if not isinstance(question, str):
        return False  # not a question at all: the answer path says so (qa.search.clean_question)
    if asks_how_many_articles(question):
        return True
    words = content_words(question)
    names_texts = bool(words & _CORPUS_WORDS)
    if words - _REQUEST_WORDS - _CORPUS_WORDS or not (
            _COLLECTION_CUE.search(question) or names_texts and _COLLECTION_WEAK_CUE.search(question)):
        return False
    return names_texts or not in_conversation


# Small talk: a greeting, thanks, a goodbye or a question about the assistant itself, and nothing else. Each kind
# is a phrase the whole message is made of (with fillers and punctuation between): "Hi there!", "ok, thanks a lot",
# "hello, how are you?", "What can you do?". A message that also asks something ("Hi, who leads the talks?") is
# a question.
_SMALL_TALK = (
    ("check", r"(?:are|r)\s+(?:you|u)\s+(?:sure|certain|positive)(?:\s+(?:about|of)\s+(?:that|this|it))?|really|seriously|is\s+(?:that|this|it)\s+(?:right|true|correct|so)"
              r"|(?:where|how)\s+(?:does|did)\s+(?:it|the\s+article|that|this)\s+say\s+(?:that|so|this)"
              r"|(?:what\s+is|what'?s)\s+(?:your|the)\s+sources?|sources?|citations?|cite\s+(?:it|that|this|your\s+sources?)"
              r"|prove\s+it|how\s+do\s+(?:you|u)\s+know(?:\s+(?:that|this))?|why\s+do\s+(?:you|u)\s+(?:say|think)\s+(?:that|so)"
              r"|where\s+did\s+(?:you|u)\s+(?:get|find|read)\s+(?:that|this)"),
    ("help", r"help(?:\s+me)?|what\s+can\s+(?:you|i)\s+(?:do|ask(?:\s+you)?)|what\s+do\s+you\s+do"
             r"|who\s+(?:are|r)\s+(?:you|u)|what\s+are\s+you|how\s+(?:does\s+this|do\s+(?:i|you))\s+work"
             r"|how\s+do\s+i\s+use\s+(?:this|you|it)|what\s+is\s+this\s+(?:app|tool|bot|thing)"),
    ("thanks", r"(?:many\s+)?thanks?(?:\s+you)?|thank\s+(?:you|u)|thx|ty|cheers|much\s+appreciated|appreciate\s+it"
               r"|(?:that|this)\s+(?:was|is)\s+(?:helpful|useful|great|perfect)|(?:very\s+)?helpful"),
    ("bye", r"bye(?:\s+bye)?|goodbye|good\s+bye|good\s+night|see\s+(?:you|ya)(?:\s+later)?|that'?s\s+all|i'?m\s+done"),
    ("greeting", r"hi|hello|hey|hiya|howdy|greetings|yo|good\s+(?:morning|afternoon|evening|day)"
                 r"|how\s+(?:are|r)\s+(?:you|u)(?:\s+doing)?(?:\s+today)?|how'?s\s+it\s+going|what'?s\s+up|sup|nice\s+to\s+meet\s+you"),
)
_SMALL_TALK_FILLER = (r"ok|okay|great|perfect|cool|nice|awesome|good|got\s+it|alright|all\s+right|there|again|so\s+much"
                      r"|very\s+much|a\s+lot|please|bot|assistant|friend|everyone|all|oh|well|and|for\s+(?:the|your)\s+help"
                      r"|for\s+that")
_SMALL_TALK_PART = re.compile(
    r"\W*(?:(?P<kind>" + "|".join(f"(?P<{k}>{p})" for k, p in _SMALL_TALK) + r")|" + _SMALL_TALK_FILLER + r")\b\W*",
    re.IGNORECASE)


def small_talk(question: Any) -> str | None:
    """"greeting", "thanks", "bye", "help" or "check" when ``question`` is small talk and nothing else ("Hi!", "ok
    thanks", "Hello, how are you?", "What can you do?"; "check": "Are you sure?", "Where does it say that?", which
    ask about the last answer, not the articles), else None. Searching the articles for it only finds some sentence
    that shares a word with it: on the seeds "hello, how are you?" after "What can you do?" was answered with a
    quote of Graham at 0.68. A question with any other word is a question ("Hi, who leads the talks?"); "yes", "no"
    and "ok" alone are not small talk (in a conversation they answer the assistant). Of about 100,000 held-out
    questions (SQuAD, SelQA dev, doc2dial turns) it matches none (bench/overview.py)."""
    if not isinstance(question, str):
        return None
    text, kinds, pos = question.strip(), [], 0
    while pos < len(text):
        m = _SMALL_TALK_PART.match(text, pos)
        if m is None or m.end() == pos:
            return None
        if m.group("kind"):
            kinds.append(next(k for k, _ in _SMALL_TALK if m.group(k)))
        pos = m.end()
    return next((k for k, _ in _SMALL_TALK if k in kinds), None)


# A follow-up that asks for what the conversation has not given yet: "Tell me more", "What else?", "Who else leads
# the talks?", "Any other requirements?".
_MORE = re.compile(
    r"""\b(?:what|who|whom|where|when|which|how|why|anything|something|anyone|anybody|someone|somebody|anywhere)
          \s+else\b
      | \b(?:any|what|which|the)\s+other\b
      | ^\W*(?:(?:and|ok|okay|so|great|thanks|please)\W+)*(?:tell\s+me|give\s+me|show\s+me|say|i\s+(?:need|want)
          |(?:can|could|would)\s+you\s+(?:tell|give|show)\s+me)\s+(?:some\s+|a\s+(?:bit|little)\s+)?more\b
      | ^\W*(?:(?:and|ok|okay|so|please)\W+)*(?:more|go\s+on|continue|keep\s+going|and\s+then)\W*$""",
    re.IGNORECASE | re.VERBOSE)


def asks_for_more(question: str) -> bool:
    """The question asks for more than the conversation has given: "Tell me more", "What else?", "Who else leads
    the talks?", "Are there any other requirements?". Its answer then leaves out what earlier answers gave
    (qa.answering.Said): on the seeds "Tell me more" repeated the sentence just quoted, and "Who else leads the
    talks?" answered "Brett McGurk" again."""
    return isinstance(question, str) and bool(_MORE.search(question))


def without_overviews(history: Any) -> Any:
    """``history`` (any form :func:`previous_questions` takes) without its requests about the articles as a whole
    (:func:`collection_request`) and their answers. An overview quotes every article and names no topic: beside the
    next question it would only blur what is searched and read. On the seeds, "How many troops would stay?" asked
    after "What are these articles about?" was searched and read with the whole overview beside it and answered
    "2,000" at 0.72 instead of 0.36 alone. An overview of one article named by its place ("Summarize the second
    article") stays: the conversation is about that article now."""
    return _without(history, lambda q, asked: _about_the_articles(q, asked) and article_ordinal(q) is None,
                    lambda a: a.shape == "overview" and article_ordinal(a.question) is None)


def without_small_talk(history: Any) -> Any:
    """``history`` without its small talk (:func:`small_talk`, "Are you sure?" too) and the replies to it: "thanks"
    names nothing to search for, yet as an earlier question it would be searched with the next one (on the seeds,
    "What can you do?" after "hi" and "thanks!" was searched as "What can you do? (hi thanks! ...)")."""
    return _without(history, lambda q, asked: bool(small_talk(q)), lambda a: a.shape in ("chat", "source"))


def _without(history: Any, drops: Any, drops_answer: Any) -> Any:
    """``history`` without the exchanges whose question ``drops(question, asked_before)`` or whose Answer
    ``drops_answer(answer)``: the question and the reply after it, whatever form the history takes."""
    from .answering import Answer  # answering builds on this module, not the other way round

    if history is None or isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        return history  # _turns says what is wrong with it
    out: list[Any] = []
    asked = dropping = False
    for item in history:
        if isinstance(item, Answer):
            dropping = drops_answer(item)
        elif isinstance(item, dict):
            if item.get("role") == "assistant":
                if dropping:
                    dropping = False
                    continue
                out.append(item)
                continue
            content = item.get("content") if item.get("role") == "user" else None
            dropping = isinstance(content, str) and drops(content, asked)
        elif isinstance(item, (list, tuple)) and item:
            dropping = isinstance(item[0], str) and drops(item[0], asked)
        else:
            dropping = isinstance(item, str) and drops(item, asked)
        asked = True
        if not dropping:
            out.append(item)
        elif not isinstance(item, dict):
            dropping = False  # an Answer or a pair holds its own reply
    return out


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)} - FUNCTION_WORDS


# Words a conversational turn opens with before its question ("and how...", "Great. So what if...").
_OPENER = re.compile(r"^\W*(?:(?:and|but|so|ok|okay|yes|no|great|thanks|thank\s+you|well|oh|also|then|right)\b\W*)+",
                     re.IGNORECASE)
_FACTOID = re.compile(r"\b(?:who|whom|whose|when|where|which|what|how\s+(?:many|much|long|old|far|big|large|often|"
                      r"tall|high|soon|deep|wide|fast|early|late))\b", re.IGNORECASE)


_ASKS = re.compile(r"^\W*(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|can|could|"
                   r"should|will|would|has|have|had|may|must)\b", re.IGNORECASE)


def as_asked(text: str) -> str:
    """``text`` with a question mark when it is a question without one ("how many us troops in syria", as typed
    into a search box): the reader learnt from questions that end in one. Text holding a "?" anywhere, or not
    opening as a question, is left as it is. Measured, not used (``answering.ASK_AS_QUESTION``)."""
    if "?" in text or not _ASKS.match(_OPENER.sub("", text)):
        return text
    return text.rstrip().rstrip(".!,;:").rstrip() + "?"


_ASIDE = re.compile(r"\s*\([^()]*\)")


def descriptive(question: str) -> bool:
    """A question answered with sentences, not a phrase: why / how / what-is / describe / summarize / do-I, and
    any question with no factoid wh-word at all (a yes/no question, "Is there a fee?", or a statement in a
    conversation, "yes I did"), whose answer is the sentence that settles it rather than a phrase."""
    q = _OPENER.sub("", question.strip())
    q = _ASIDE.sub("", q)  # "What is the SDF (Syrian Democratic Forces)?" asks what "What is the SDF?" asks
    return bool(_DESCRIPTIVE.search(q)) or not _FACTOID.search(q)


# ---------------------------------------------------------------------------------------------------------------
# Follow-ups

_FOLLOW_UP_START = re.compile(r"^(and|but|also|so|then|what about|how about|and what about|what of)\b", re.I)
_WH_START = re.compile(r"^\W*(?:who|whom|whose|what|which|when|where|why|how)\b(?!\W+(?:not|else)\b)", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|theirs|that|those|these|this|he|him|his|she|her|there|then|one)\b", re.I)


def _turns(history: Any) -> list[tuple[str, str]]:
    """``history`` as (role, text) pairs, oldest first; role "user" or "assistant"."""
    from .answering import ABSTAIN_TEXT, Answer  # answering builds on this module, not the other way round

    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise InvalidQuestionError(
            f"history must be a list of earlier answers, (question, answer) pairs or chat messages, not "
            f"{type(history).__name__}; pass None for a new conversation."
        )
    out: list[tuple[str, str]] = []
    for item in history:
        if isinstance(item, Answer):
            out.append(("user", item.question))
            if not item.abstained:
                out.append(("assistant", item.text))
        elif isinstance(item, dict):
            if item.get("role") in ("user", "assistant") and isinstance(item.get("content"), str):
                out.append((item["role"], item["content"]))
        elif isinstance(item, str):  # an earlier question alone, as the web API's list of strings sends them
            out.append(("user", item))
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            out.append(("user", item[0]))
            if len(item) > 1 and isinstance(item[1], str):
                out.append(("assistant", item[1]))
    cleaned = [(role, " ".join(MARKERS.sub("", text).split())) for role, text in out]
    return [(role, text) for role, text in cleaned if text and text != ABSTAIN_TEXT]


MARKERS = re.compile(r"\s*\[\d+\]")


_NAMED = re.compile(r"(?<!^)(?<![.?!]\s)\b(?!I\b)[A-Z][\w'’.-]*|\b\w*\d\w*\b|\b[A-Z]{2,}\b")


def names_something(question: str) -> bool:
    """Whether a question names something of its own: a capitalised word not opening a sentence (but "I"), an
    acronym or a number ("Who won the 2018 FIFA World Cup?"; not "what should i bring?")."""
    return bool(_NAMED.search(_OPENER.sub("", question.strip())))


def conversation_words(history: Any) -> set[str]:
    """The content words said so far in the conversation, by the user or in an answer."""
    return set().union(*(content_words(text) for _, text in _turns(history)))


def previous_questions(history: Any) -> list[str]:
    """The user's earlier questions, oldest first. ``history`` may be a list of Answer objects, of (question,
    answer) pairs, of chat messages ``{"role": "user" | "assistant", "content": ...}`` as Gradio keeps them, or
    of earlier questions as plain strings."""
    return [text for role, text in _turns(history) if role == "user"]


def needs_context(question: str) -> bool:
    """A follow-up starts like one ("and ...", "what about ..."), is very short, or leans on a pronoun while
    naming too little to stand alone ("when did that happen?"; not "How many visitors did the festival draw
    on its opening night?"). Three words are enough for a question word, a verb and a name ("Who wrote Hamlet?",
    "what is MST"): that is a question of its own, not an ellipsis ("why Turkey?", "how deep?", "who is he?").
    Of SQuAD 1.1 train's 356 three-word questions, all written to stand alone, 183 now do ("Who succeeded Stalin?",
    "What is SNR?"; none before); of doc2dial's 2,159 turns, 2 change, both sharing a word with their talk, so
    searched with it as before (docs/benchmarks.md, stop 63)."""
    words = WORD.findall(question)
    if _FOLLOW_UP_START.match(question.strip()) or len(words) < 3:
        return True
    if len(words) == 3:
        return not (_WH_START.match(question) and names_something(question) and not _PRONOUN.search(question))
    return bool(_PRONOUN.search(question)) and len(content_words(question)) <= 3


def rewrite_follow_up(question: str, history: Any, generator: Generator | None) -> tuple[str, str]:
    """``(searched_for, reader_question)`` for ``question`` given earlier turns.

    With no earlier turn, the question is both. Otherwise search gets the question followed, in parentheses, by
    the user's earlier questions and the last answer: in a conversation about a document the answer is usually
    in the same place as the earlier ones, named or not. On doc2dial later turns (200 tuning turns outside the
    public sample) that found the gold passage in the top 5 for 0.805 of them, against 0.525 for the question
    alone, 0.63 for the earlier rule (previous question only, and only for questions that look like follow-ups)
    and 0.715 for the previous question alone (docs/benchmarks.md). The reader reads the question itself, minus
    a leading "and"/"what about", so that the earlier words cannot pull the old answer back.

    An optional generator (``Settings.generator``) may draft a standalone form of a question that looks like a
    follow-up; the draft is used for reading only if it keeps every content word of the follow-up and adds none
    found in neither the follow-up nor the previous question.
    """
    turns = _turns(history)
    users = [text for role, text in turns if role == "user"]
    if not users:
        return question, question
    answers = [text for role, text in turns if role == "assistant"]
    context = " ".join([*dict.fromkeys(users), *answers[-1:]])
    core = _FOLLOW_UP_START.sub("", question.strip()).strip(" ,") or question
    core = core[0].upper() + core[1:]
    reader_q = core if needs_context(question) else question
    if generator is not None and needs_context(question):
        try:
            draft = generator.generate(REWRITE_PROMPT.format(previous=users[-1], question=question), max_tokens=40)
        except Exception:  # a failing rewrite must not lose the question
            draft = ""
        draft = draft.strip().split("\n")[0].strip()
        allowed = content_words(users[-1]) | content_words(question)
        if (draft.endswith("?") and draft.lower() != question.lower()
                and len(draft) <= 2 * (len(users[-1]) + len(question))
                and content_words(question) <= content_words(draft) and content_words(draft) <= allowed):
            reader_q = draft
    return f"{question} ({context})", reader_q


#: The last assistant turn is read with a follow-up when it has at least this many words: a statement, not a
#: short answer.
CONTEXT_MIN_WORDS = 8


#: What a short follow-up reads beside it when the last answer is no statement (:func:`reader_text`): "topic" (the
#: user's last question that names something, its question word dropped: "Who is leading the talks?" -> "leading
#: the talks"), "topic+answer" (that, and the answer that question got: "the US shoot down: a pro-regime drone")
#: or "question" (the previous question as asked, shipped until stop 61). On 117 factoid follow-ups made from the
#: 5 held-out SQuAD tuning articles (bench/factoid_followups.py), right 0.692 (question), 0.769 (topic), 0.821
#: (topic+answer), 0.795 (its content words alone); the original question asked alone 0.786. After the product's
#: own first answers instead of gold ones (``--own-answers``): 0.684 (question), 0.744 (topic+answer). The
#: question's own words pulled the answer's type along: "Where did they meet? (Who is leading the talks?)" read
#: "Brett McGurk". On 400 doc2dial tuning turns, which mostly follow a statement: 0.328 (question), 0.325.
FOLLOW_UP_CONTEXT = "topic+answer"

# A question's opening question word, with "how many"-like phrases and the auxiliary after it.
_WH_LEAD = re.compile(r"^\W*(?:what|which|who|whom|whose|when|where|why|"
                      r"how(?:\s+(?:many|much|long|far|old|big|deep|often|large|soon))?)\b\s*"
                      r"(?:(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may|might)\b\s*)?",
                      re.IGNORECASE)


def question_topic(question: str) -> str:
    """What a question is about, without its question word: "Who is leading the talks?" -> "leading the talks"."""
    return _WH_LEAD.sub("", question).strip().rstrip("?").strip()


#: How a question that stands alone (``needs_context`` False) is read after a statement (:func:`reader_text`):
#: "alone" (as when asked alone), "shared" (beside the statement when they share a content word, else alone) or
#: "statement" (beside it, as until stop 62). See reader_text's docstring for the figures.
STANDALONE_READING = "shared"


def reader_text(reader_q: str, history: Any, question: str | None = None) -> str:
    """What the reader reads for ``reader_q``: the question, and for a follow-up the last assistant turn in
    parentheses when that is a statement. On 150 doc2dial tuning turns (outside the public sample) the sentence
    the answer chose overlapped the gold span for 0.293 of them, against 0.253 with the question alone, 0.260 with
    the previous question and 0.260 with everything searched (bench/dialogue_reading.py). A short answer ("2,000")
    is not read alone, so that it cannot pull itself back as the answer to the next question.

    Given the ``question`` as asked: when there is no such statement and the question leans on the conversation
    (:func:`needs_context`: "What is she urging?" after "Who is Ilhan Ahmed?"), what the talk is about
    (:data:`FOLLOW_UP_CONTEXT`): the topic of the user's last question that names one, with the short answer it
    got ("What is she urging? (Ilhan Ahmed: senior Syrian Kurdish official)"). A question that stands alone is
    read alone, as when asked alone, unless it shares a word with the last statement (measured: see below).
    (Without ``question``, as the reader's training data was made: reproducible.)

    A question that stands alone (``needs_context`` False) after a statement (:data:`STANDALONE_READING`;
    2026-12-07, stop 62), beside it always / alone / beside it when they share a content word ("shared",
    shipped): 120 held-out SQuAD questions after another question's answer sentence, of the same article right
    0.742 / 0.758 / 0.758, of another article 0.733 / 0.742 / 0.733, the same answer as asked alone 0.61 / 0.78 /
    0.69 and 0.60 / 0.73 / 0.71 (``bench/factoid_followups.py --after-statement``); 200 doc2dial tuning turns
    (145 stand alone) through ``qa.answer``, answered 0.930 / 0.900 / 0.915, cited of those 0.543 / 0.539 /
    0.552, i.e. 101 / 97 / 101 turns cited (``bench/standalone.py``): doc2dial's standalone-looking turns lean on
    the agent's last words, a question on another matter does not."""
    turns = _turns(history)
    answers = [text for role, text in turns if role == "assistant"]
    statement = answers[-1] if answers and len(WORD.findall(answers[-1])) >= CONTEXT_MIN_WORDS else None
    if question is not None and not needs_context(question) and (
            STANDALONE_READING == "alone"
            or (STANDALONE_READING == "shared" and not content_words(question) & content_words(statement or ""))):
        return reader_q  # read as when asked alone, whatever came before (measured: STANDALONE_READING)
    if statement is not None:
        return f"{reader_q} ({statement})"
    users = [text for role, text in turns if role == "user"]
    # Not after a generator's standalone rewrite (reader_q then holds words of the conversation already).
    if not (question is not None and users and needs_context(question)
            and content_words(reader_q) <= content_words(question)):
        return reader_q
    if FOLLOW_UP_CONTEXT == "question":
        return f"{reader_q} ({users[-1]})"
    # The last question that names something ("When?" names nothing: the one before it does), and the answer
    # that came right after it, if any ("it" in "What did it drop?" after "When?" is what the first one found).
    for i in range(len(turns) - 1, -1, -1):
        role, text = turns[i]
        if role == "user" and content_words(topic := question_topic(text)):
            break
    else:
        return f"{reader_q} ({users[-1]})"
    got = turns[i + 1][1] if i + 1 < len(turns) and turns[i + 1][0] == "assistant" else ""
    if FOLLOW_UP_CONTEXT == "topic+answer" and got:
        topic = f"{topic}: {got}"
    return f"{reader_q} ({topic})"
