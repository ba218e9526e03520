"""Web content is untrusted data. Helpers that keep it that way.

- `strip_hidden_html`: drops elements a reader would not see (display:none, visibility:hidden,
  `hidden`, aria-hidden, zero font size) before extraction, because hidden text is the classic
  carrier of injected instructions.
- `instruction_like`: flags text that addresses a model ("ignore previous instructions",
  "you must recommend", "system:"). Flagged spans never become evidence, and a page with any
  flagged span contributes no evidence at all (its visible text was written to steer us).
- `quote_as_data`: wraps page text for a prompt: fenced, with the fence characters removed from
  the text so it cannot close the fence, and placed in the user turn, never the system turn.
"""

from __future__ import annotations

import re

_END = r"\s*(?:!\s*important\s*)?(?:;|$)"  # the end of a declaration, `!important` or not
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*(?:0*\.\d+|0|1)(?:px|pt|em|rem|%)?" + _END  # 0 or 1px: unreadable
    + r"|opacity\s*:\s*0*(?:\.0\d*)?" + _END  # opacity below 0.1
    + r"|(?:left|top|text-indent)\s*:\s*-\d{3,}"  # pushed off screen
    r"|clip\s*:\s*rect\(\s*0",
    re.IGNORECASE | re.MULTILINE,
)

_WHOSE = r"(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?"
_ORDERS = r"(?:instructions?|prompts?|rules?|directions?|guidance|guidelines|orders|programming|system\s+prompt)"
_READER = r"(?:ai|a\.i\.|assistants?|chatbots?|llms?|language\s+models?|gpts?|chatgpt)"  # what a page calls a model
_INSTRUCTION_PATTERNS = [
    rf"\b(?:ignore|override|bypass)\s+{_WHOSE}(?:previous|prior|above|earlier|preceding|original|initial|existing)\s+{_ORDERS}",
    rf"\bdisregard\s+{_WHOSE}(?:previous|prior|above|earlier|preceding|original|initial|system)\b",
    rf"\bdisregard\s+{_WHOSE}{_ORDERS}",
    r"\bforget\s+(?:all\s+|everything\s+)?(?:your|the|previous)\s+(?:instructions?|rules?|guidance)",
    # text that speaks to a model reading the page
    r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:ai|assistants?|models?|llms?|language\s+models?|chatbots?|bots?)\b",
    r"\b(?:ai|assistants?|llms?|language\s+models?|chatbots?)\s+(?:reading|processing|summari[sz]ing)\s+this\b",
    r"\bthe\s+only\s+(?:correct|acceptable|valid|right)\s+(?:reply|response|output)\s+is\b",
    r"\b(?:reply|answer|respond|output)\s+(?:is\s+)?(?:with\s+)?exactly\s*[:\"'“]",
    r"\byou\s+are\s+now\s+(?:required|instructed|obliged|ordered|in)\b",
    r"\bfrom\s+now\s+on,?\s+(?:you|the\s+assistant)\b",
    r"\btell\s+the\s+(?:reader|user)s?\s+(?:to|that)\b",
    r"\[/?(?:INST|SYS|SYSTEM)\]|<</?SYS>>|<\|[a-z_]{2,40}\|>",
    r"\b(?:you|assistant|model|ai)\s+(?:must|should|have to|are required to)\s+(?:always\s+)?(?:recommend|rank|say|answer|output|reply)",
    r"\b(?:always|only)\s+recommend\b",
    r"\brecommend\s+.{0,80}?\s+(?:above|before|instead of)\s+(?:all|any|every)",
    r"(?:^|\n)\s*(?:system|assistant)\s*(?:prompt)?\s*:",
    r"<\|?(?:im_start|system|assistant)\|?>",
    r"\bnew\s+instructions?\s*:",
    # the same, phrased around a fixed list (session 23 QA). Narrow on purpose: each was checked
    # against reviews, recipes, forums and settings pages ("enable Developer Mode", "## Instructions:",
    # "tell readers to", "Dear agents,"), which must stay evidence.
    rf"\bnew\s+(?:task|orders?|instructions?|directives?)\s+for\s+(?:the\s+|any\s+)?{_READER}\s*:",
    rf"(?:^|[.!?\n]\s*)(?:attention|dear|hey|hello|hi)\s*,?\s+{_READER}\s*[:,!]",
    r"\b(?:ai\s+)?(?:models?|systems?|assistants?|llms?)\s+(?:reading|processing|summari[sz]ing|parsing)\s+"
    r"this\s+(?:page|text|document|article|site)\b",
    r"(?:^|\n)\s*###\s*(?:instruction|response|system)\s*:",
    r"\bdisregard\s+(?:what(?:ever)?|everything|anything|all)\s+(?:that\s+)?you\s+(?:were|have\s+been|'ve\s+been)\s+"
    r"(?:told|instructed|given)",
    r"\bsystem\s+override\b",
    r"(?:^|[.!?:]\s+)rank\s+.{0,60}?\s+(?:first|#\s?1|highest)\s+in\s+(?:every|all|each)\b",
    r"(?:^|[.!?:]\s+)recommend\s+.{0,80}?\s+to\s+(?:every|all|each)\s+users?\b",
    r"\b(?:say|write|include|output)\s+.{0,40}?\s+in\s+(?:each|every)\s+(?:of\s+)?(?:your\s+)?"
    r"(?:explanations?|reasons?|recommendations?)\b",
    r"\bin\s+(?:each|every|all)\s+(?:explanations?|reasons?|recommendations?)\s+you\s+(?:write|give|produce)",
    # the same orders in other languages (the raw text is searched too, so Cyrillic stays Cyrillic)
    r"\bignor(?:a|ar|e|en)\s+(?:todas\s+|todos\s+)?(?:las\s+|as\s+|os\s+)?(?:instrucciones|instru[çc][õo]es|indicaciones)\s+"
    r"(?:anteriores|previas|pr[ée]vias|acima)",
    r"\bolvida(?:r)?\s+(?:todas\s+)?(?:tus|las)\s+instrucciones",
    r"\bignor(?:e|er|ez)\s+(?:toutes\s+)?(?:les\s+|vos\s+|tes\s+)?(?:instructions|consignes)\s+"
    r"(?:pr[ée]c[ée]dentes|ant[ée]rieures|ci-dessus)",
    r"\boubli(?:e|er|ez)\s+(?:toutes\s+)?(?:tes|vos|les)\s+(?:instructions|consignes)",
    r"\bignorier(?:e|en|t)?\s+(?:alle\s+)?(?:vorherigen|bisherigen|fr(?:ü|ue)heren|obigen|vorigen)\s+"
    r"(?:Anweisungen|Instruktionen|Befehle|Vorgaben)",
    r"\bvergiss\s+(?:alle\s+)?(?:deine\s+|die\s+)?(?:vorherigen\s+|bisherigen\s+)?(?:Anweisungen|Instruktionen)",
    r"\bignora\s+(?:tutte\s+)?(?:le\s+)?istruzioni\s+(?:precedenti|sopra)",
    r"\b(?:игнорируй|игнорируйте|проигнорируй|забудь|забудьте)\s+(?:все\s+)?(?:предыдущие\s+|прежние\s+|свои\s+)?"
    r"(?:инструкции|указания)",
    r"(?:忽略|无视|忽視|無視)(?:之前|以上|上面|先前|前面|所有)(?:的)?(?:所有)?(?:指令|指示|说明|說明|提示)",
    r"(?:以前|前|上記)の(?:すべての)?(?:指示|命令)を(?:すべて)?無視",
]
_INSTRUCTION = re.compile("|".join(_INSTRUCTION_PATTERNS), re.IGNORECASE | re.MULTILINE)

# Ways to write a phrase so that it reads the same but no longer matches: invisible characters
# between letters, full-width forms, and Cyrillic/Greek letters that look like Latin ones.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"))
_LOOKALIKES = str.maketrans("авсеёһіјкмнорѕтухАВСЕНІЈКМНОРЅТХУαοριτυνΑΒΕΗΙΚΜΝΟΡΤΧΥ",
                            "aceeehijkmhopstyxABCEHIJKMHOPSTXYaopituvABEHIKMNOPTXY")


def _fold(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).translate(_LOOKALIKES)


def _hidden_elements(tree) -> list:
    found = []
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag in ("script", "style", "template", "noscript"):
            found.append(el)
        elif el.get("hidden") is not None or el.get("aria-hidden", "").lower() == "true":
            found.append(el)
        elif _HIDDEN_STYLE.search(el.get("style", "")):
            found.append(el)
    return found


def _parse(html: str):
    import lxml.html

    try:
        return lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None


def strip_hidden_html(html: str) -> str:
    """The HTML without invisible elements (and without script/style/template/noscript)."""
    import lxml.html

    tree = _parse(html)
    if tree is None:
        return html
    for el in _hidden_elements(tree):
        if el.getparent() is not None:
            el.drop_tree()  # keeps the element's tail text, which belongs to the (visible) parent
    return lxml.html.tostring(tree, encoding="unicode")


def hidden_text_of(html: str) -> str:
    """The text of invisible elements other than script/style (what a reader never sees)."""
    tree = _parse(html)
    if tree is None:
        return ""
    return " ".join(
        el.text_content() for el in _hidden_elements(tree) if el.tag not in ("script", "style", "template")
    )


def instruction_like(text: str) -> bool:
    """True when the text reads as an instruction to a model rather than content."""
    return bool(_INSTRUCTION.search(text) or _INSTRUCTION.search(_fold(text)))


FENCE = "<<<"
FENCE_END = ">>>"


def quote_as_data(text: str, source: str, max_chars: int = 600) -> str:
    """`text` as a fenced, attributed quotation that cannot close its own fence."""
    clean = text.replace("<<<", "« ").replace(">>>", " »")
    clean = re.sub(r"\s+", " ", clean).strip()[:max_chars]
    return f"[source: {source}]\n{FENCE}\n{clean}\n{FENCE_END}"
