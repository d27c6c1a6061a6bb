"""Input guard: prompt-injection detection on a linear-time multi-pattern engine.

Same API as the original ``proxilion.guards.input_guard`` (API.md section 6.1): the same
names, risk-score formula, threshold rule, actions, ``matches`` entries and ``context``.
Differences, all deliberate:

* **Engine.** All patterns of a guard are compiled once into one multi-pattern automaton
  (``proxilion._core.PatternSet``) that scans the text in one pass, in linear time; spans
  are computed only for the patterns that matched. Patterns with look-around or
  back-references still work, on Python's ``re`` (reported by
  :attr:`InputGuard.fallback_patterns`).
* **Normalisation.** Patterns are matched against a normalised view of the text (NFKC,
  zero-width and bidi controls removed, tag characters decoded, look-alike letters mapped
  to ASCII, combining overlays on Latin letters dropped), so ``"ign\\u200bore previous
  instructions"`` or a Cyrillic look-alike spelling is caught. Spans, ``matched_text`` and
  sanitising refer to the original text.
* **Defaults.** The 14 default patterns keep their names, categories and severities, but
  no longer misfire on everyday words (``jailbreak_dan`` no longer flags "guidance" or
  "Daniel"; ``role_switch`` no longer flags "contract asia") and catch many more phrasings,
  code-injection forms and encoded variants (see ``docs/guards.md`` for measured rates).
  They flag every probe the original flags except everyday instructions its bare keywords
  misfire on ("respond with only yes", "use rot13", "step 1 ... step 2 ...", "first ...,
  then ..., finally ...", "sudo make me a sandwich"), which pass on purpose.
* **Validation.** Severities must be numbers in [0, 1]; non-``str`` input is a
  ``TypeError``; sanitising merges overlapping spans instead of corrupting the text.
"""

from __future__ import annotations

import base64
import codecs
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from proxilion._backend import adopt_dataclass, impl
from proxilion._reference.guard import GuardResult as _DataclassGuardResult
from proxilion._reference.guard import Hits
from proxilion.guards._engine import (
    RE_FLAGS,
    CompiledSet,
    PatternList,
    compile_set,
    compile_user_pattern,
    validate_engine,
    validate_severity,
    validate_threshold,
)

__all__ = [
    "DEFAULT_INJECTION_PATTERNS",
    "GuardAction",
    "GuardResult",
    "InjectionPattern",
    "InputGuard",
    "create_input_guard",
]

logger = logging.getLogger(__name__)


class GuardAction(Enum):
    """What a guard does with a text that fails its check."""

    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"
    SANITIZE = "sanitize"


if TYPE_CHECKING:
    from proxilion._reference.guard import GuardResult as GuardResult
else:
    # The dataclass of API.md 6.1. On the native backend it is a native class (much cheaper
    # to build) carrying this dataclass's metadata, so ``dataclasses.fields``/``asdict``/
    # ``replace`` work on it; see rust/python/src/guard.rs.
    GuardResult = impl.GuardResult
    if GuardResult is not _DataclassGuardResult:
        adopt_dataclass(GuardResult, _DataclassGuardResult)

_ALLOW = GuardAction.ALLOW


def _validate_action(action: object) -> GuardAction:
    if not isinstance(action, GuardAction):
        raise TypeError(f"action must be a GuardAction, not {type(action).__name__}")
    return action


@dataclass
class InjectionPattern:
    """A named injection pattern (Python ``re`` syntax, compiled IGNORECASE | MULTILINE).

    Unlike the original, ``severity`` must be a number in [0, 1] (``ValueError``
    otherwise), and patterns that are too long or nested too deeply are rejected with
    ``ValueError`` (see :mod:`proxilion.guards._syntax`).
    """

    name: str
    pattern: str
    severity: float
    description: str
    category: str = "general"
    _compiled: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._compiled = compile_user_pattern(self.name, self.pattern)
        self.severity = validate_severity(self.name, self.severity)

    @property
    def compiled(self) -> re.Pattern[str]:
        """The pattern compiled by Python's ``re``."""
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, RE_FLAGS)
        return self._compiled

    def match(self, text: str) -> list[re.Match[str]]:
        """All ``re`` matches of this pattern in ``text`` (no normalisation)."""
        return list(self.compiled.finditer(text))


# --- default patterns ------------------------------------------------------------------
# Written in verbose ASCII mode: whitespace is insignificant, \b \w \s are ASCII. The
# normalised view makes look-alikes, full-width and zero-width tricks ASCII first.

# Single-word and multi-word verbs are kept apart: each alternative of a pattern is a
# separate Hyperscan expression, and mixing the two makes its compiler very slow.
_VERB1 = (
    r"(?:ignore|disregard|forget|override|overrule|bypass|skip|discard|dismiss|abandon"
    r"|neglect|circumvent|disobey|scrap|nullify)"
)
_VERB2 = (
    r"(?:set\s+aside|throw\s+out|put\s+aside"
    r"|(?:do\s+not|don'?t|never)\s+(?:follow|obey|adhere\s+to|comply\s+with)"
    r"|(?:stop|quit|cease)\s+(?:following|obeying)|no\s+longer\s+(?:follow|obey))"
)
_TARGET = (
    r"(?:previous|prior|preceding|above|earlier|original|initial|foregoing|former|system"
    r"|developer|safety|built-?in|programmed|existing|hidden)"
)
_NOUN = (
    r"(?:instructions?|rules?|prompts?|guidelines?|constraints?|directions?|directives?"
    r"|commands?|programming|restrictions?|guardrails?|safeguards?|policies|orders?"
    r"|limitations?|training)"
)
_WORD = r"[a-z'-]+\s+"


def _override_alternatives(verb: str) -> str:
    return rf"""
        \b{verb}\s+(?:(?:all|any|every|each|of|the|your|my|these|those)\s+){{0,3}}
            {_TARGET}\s+(?:{_WORD}){{0,2}}?{_NOUN}\b
        | \b{verb}\s+(?:all|any|every)\s+(?:(?:of\s+)?(?:the|your|my|these|those)\s+)?
            (?:{_WORD})?{_NOUN}\b
        | \b{verb}\s+your\s+(?:{_WORD})?{_NOUN}\b
        | \b{verb}\s+(?:everything|anything|all(?:\s+of\s+(?:that|this|it))?|what(?:ever)?)\s+
            (?:(?:that|which)\s+)?
            (?:you(?:'ve|\s+have)?\s+(?:been|were)\s+(?:told|taught|instructed|given|programmed)
              |(?:was\s+)?(?:said|written|stated|mentioned)\s+(?:above|before|earlier|previously)
              |above|before\s+this|previously|so\s+far|up\s+to\s+(?:now|this\s+point))
        """


def _b64_fragments(phrases: list[str]) -> list[str]:
    """Base64 text that any encoding of ``phrase`` must contain, at each byte alignment."""
    out: set[str] = set()
    for p in phrases:
        data = p.encode()
        for k in range(3):
            enc = base64.b64encode(b"\0" * k + data).decode()
            start = -(-k // 3) * 4
            end = ((k + len(data)) // 3) * 4
            frag = enc[start:end]
            if len(frag) >= 8:
                out.add(re.escape(frag))
    return sorted(out)


_ENCODED_PHRASES = [
    "ignore all previous",
    "ignore previous instructions",
    "Ignore all previous",
    "Ignore previous instructions",
    "IGNORE ALL PREVIOUS",
    "ignore your instructions",
    "disregard all previous",
    "your system prompt",
    "reveal your system prompt",
]
_B64 = "|".join(_b64_fragments(_ENCODED_PHRASES))
_ROT13 = "|".join(
    re.escape(codecs.encode(p, "rot13")).replace(r"\ ", r"\s+")
    for p in (
        "ignore all previous",
        "ignore previous instructions",
        "system prompt",
        "disregard all",
    )
)
_REVERSED = "|".join(
    re.escape(p[::-1]).replace(r"\ ", r"\s+")
    for p in ("ignore all previous", "ignore previous instructions", "system prompt")
)
# An ASCII letter's percent/hex/unicode/HTML escape.
_PCT_LETTER = r"%(?:[46][1-9a-f]|[57][0-9a])"
_HEX_LETTER = r"\\x(?:[46][1-9a-f]|[57][0-9a])"
_UNI_LETTER = r"\\u00(?:[46][1-9a-f]|[57][0-9a])"
_HTML_LETTER = (
    r"&\#(?:x(?:[46][1-9a-f]|[57][0-9a])|(?:6[5-9]|[78][0-9]|9[0789]|1[01][0-9]|12[0-2]));"
)
_FREEDOM = (
    r"(?:(?:no|without(?:\s+any)?)\s+(?:rules|restrictions|limits|limitations|filters|guidelines"
    r"|ethics|laws|morals|morality|consequences|safety(?:\s+(?:rules|guidelines|measures))?"
    r"|content\s+polic(?:y|ies)|censorship|boundaries)"
    r"|unrestricted|unfiltered|uncensored|jailbroken|amoral|unethical)"
)
_IMPERATIVE = (
    r"(?:^|[.!?:;]\s*|\b(?:please|now|i\s+want\s+you\s+to|i\s+need\s+you\s+to"
    r"|you\s+(?:will|must|should|shall|are\s+going\s+to|are\s+to|now)|can\s+you|could\s+you"
    r"|will\s+you)\s+)"
)
_ROLE_NOUN = (
    r"(?:ai|assistant|bot|chatbot|model|llm|gpt|character|persona|hacker|villain|criminal"
    r"|version|entity|human|person|being|machine|program|demon|god|dan)"
)
_SENSITIVE = (
    r"(?:credentials?|keys?|api\s+keys?|passwords?|tokens?|secrets?|conversation(?:\s+history)?"
    r"|chat\s+history|system\s+prompt|environment\s+variables|\.env(?:\s+file)?|cookies"
    r"|session(?:\s+tokens?)?|private\s+keys?|ssh\s+keys?)"
)
_EXFIL_VERB = r"(?:send|e-?mail|post|upload|exfiltrate|forward|transmit|leak|submit)"

_DEFAULTS: list[tuple[str, str, float, str, str]] = [
    (
        "instruction_override",
        "(?ax)\n"
        + "|".join(_override_alternatives(v) for v in (_VERB1, _VERB2))
        + r"""
        | \byour\s+(?:new|real|actual|true|updated)\s+(?:instructions?|rules|task|directives?
            |objective|goal|purpose|mission|prompt)\s+(?:is|are|will\s+be)\b
        | \bnew\s+system\s+(?:prompt|instructions?)\b
        | \bignora\s+(?:todas\s+)?(?:las\s+)?instrucciones\s+(?:anteriores|previas)
        | \bignore[rz]?\s+(?:toutes\s+)?(?:les\s+)?instructions\s+pr(?:e|é)c(?:e|é)dentes
        | \bignorier(?:e|en)?\s+(?:alle\s+)?(?:vorherigen|bisherigen|vorigen)\s+
            (?:anweisungen|instruktionen|befehle)
        """,
        0.9,
        "Attempt to override or discard the model's instructions",
        "instruction_override",
    ),
    (
        "role_switch",
        rf"""(?ax)
        {_IMPERATIVE}you\s*(?:are|'re)\s+now\s+(?:a|an|my)\s+[a-z]
        | \byou\s*(?:are|'re)\s+now\s+(?:(?:a|an|the|my)\s+(?:{_WORD}){{0,3}}?{_ROLE_NOUN}\b
            |(?:called|named|known\s+as)\b
            |(?:dan|unrestricted|unfiltered|uncensored|jailbroken|evil)\b
            |free\s+(?:from|of)\b
            |no\s+longer\s+(?:an?\s+)?(?:ai|assistant|bound|restricted|limited|chatgpt|claude)\b)
        | \b(?:from\s+now\s+on|henceforth|for\s+the\s+rest\s+of\s+(?:this|the)\s+conversation),?\s+
            you\s+(?:are|will\s+be|shall\s+be|will\s+act|act|must\s+act|play|will\s+play
            |respond\s+as)\b
        | {_IMPERATIVE}(?:act|behave|respond|answer|reply|speak|talk|roleplay|role-play
            |role\s+play)\s+(?:as|like)\s+(?:a|an|the|my|dan|someone|somebody)\b
        | {_IMPERATIVE}pretend\s+(?:that\s+)?(?:you\s*(?:are|'re)|to\s+be)\s+(?:a|an|my
            |someone|somebody)\b
        | \bpretend\s+(?:that\s+)?you\s*(?:are|'re)\s+(?:a|an|my|someone|somebody)\b
        | \b(?:pretend|imagine)\s+(?:that\s+)?(?:you\s*(?:are|'re|were)|to\s+be)\s+
            (?:(?:a|an|the|my)\s+)?(?:{_WORD}){{0,2}}?
            (?:{_ROLE_NOUN}|evil|unrestricted|unfiltered|uncensored|jailbroken|without
            |free|not\s+an?\s+ai|no\s+longer)\b
        | {_IMPERATIVE}(?:assume|adopt|take\s+on|switch\s+to|enter)\s+(?:the\s+|a\s+|an\s+)?
            (?:role|persona|identity|character|personality)\b
        | \b(?:stay|remain)\s+in\s+character\b
        | \bplay\s+the\s+(?:role|part)\s+of\s+(?:an?\s+)?(?:ai|assistant|hacker|villain|evil
            |unrestricted|dan)\b
        | \byou\s*(?:are|'re)\s+(?:no\s+longer|not)\s+(?:an?\s+)?(?:ai|assistant|chatbot
            |language\s+model|llm|chatgpt|claude|bound\s+by)\b
        | \bsimulate\s+(?:being\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken
            |evil|different)\s+(?:ai|assistant|model|chatbot|version)
        | \bswitch\s+(?:to\s+)?(?:your\s+)?(?:alter\s+ego|evil\s+twin|shadow\s+self|dark\s+side)
        """,
        0.8,
        "Attempt to switch the model into another role or persona",
        "role_switch",
    ),
    (
        "system_prompt_extraction",
        r"""(?ax)
        \b(?:show|reveal|display|print|output|tell|give|share|repeat|recite|dump|leak|expose
            |disclose|list|write\s+out|spell\s+out|paste|echo|type\s+out|read\s+(?:out|back)
            |return|provide|copy|translate|summari[sz]e|encode)\s+
          (?:me\s+|us\s+)?
          (?:(?:all|the|your|its|of|exact|full|complete|entire|verbatim|real|current|first)\s+){0,4}
          (?:system\s+(?:prompt|message|instructions?)
            |(?:initial|original|hidden|secret|internal|pre-?prompt|developer|confidential
              |underlying|starting|base)\s+(?:prompt|instructions?|rules|directives?|message
              |configuration|guidelines)
            |(?:instructions|prompt)\s+(?:that\s+)?you\s*(?:were|'ve\s+been|have\s+been)\s+given
            |(?:text|words|content|everything|instructions?|messages?)\s+(?:above|before\s+
              (?:this|my\s+message))
            |prompt\b)
        | \bwhat\s+(?:is|are|was|were)\s+your\s+(?:(?:exact|full|original|initial|hidden|secret
            |system|first|real|current)\s+)*(?:system\s+prompt|instructions|prompt|directives)\b
        | \bwhat\s+(?:is|was)\s+the\s+system\s+prompt\b
        | \bstarting\s+with\s+["'`]?you\s+are\b
        | \bwhat\s+(?:were|are)\s+you\s+(?:told|instructed|programmed)\s+(?:to\s+do\s+)?
            (?:before|at\s+the\s+start|initially|originally|by\s+(?:your|the)\s+(?:developer
            |creator|system))
        """,
        0.85,
        "Attempt to extract the system prompt or hidden instructions",
        "system_prompt_extraction",
    ),
    (
        "delimiter_escape",
        r"""(?ax)
        \[/INST\]
        | </s>\s*(?:<s>|\[INST\])
        | <\|[a-z_]{2,32}\|>
        | <(?:start|end)_of_turn>
        | <</SYS>>
        | </?system(?:[_-](?:prompt|message))?>
        | </?(?:assistant|user)_(?:message|turn)>
        | ```\s*system\b
        """,
        0.95,
        "Chat-template control tokens used to escape the prompt",
        "delimiter_escape",
    ),
    (
        "jailbreak_dan",
        r"""(?ax)
        (?-i:\bDAN\b)
        | \bdo\s+anything\s+now\b
        | \bjail\s*-?\s*(?:break(?:s|ing|ed)?|broken)\b
        | \b(?:bypass|circumvent|evade|get\s+around|disable|deactivate|turn\s+off|override
            |ignore|break\s+free\s+(?:of|from))\s+(?:(?:all|any|the|your|of|its|these)\s+){0,2}
            (?:(?:safety|ethical|content|moral|openai|anthropic|built-in)\s+)?
            (?:restrictions?|filters?|filtering|safeguards?|guardrails?|safety|censorship
            |moderation|content\s+polic(?:y|ies)|limitations|ethics|alignment)\b
        | \bdeveloper\s+mode\s+(?:enabled|activated)\b
        | """
        + _IMPERATIVE
        + r"""(?:enable|activate|enter|switch\s+to|turn\s+on|unlock)\s+(?:the\s+)?developer\s+mode
            [ \t]*(?:$|[.!,;:]|\s+(?:now|and|then|so|where|in\s+which|to\s+(?:bypass|ignore
            |answer|remove|disable|unlock)|with(?:out)?\s+(?:no|any)))
        | \b(?:enter|activate|enable|unlock|switch\s+to|turn\s+on)\s+(?:god|unrestricted
            |jailbreak|jailbroken|unfiltered|uncensored|evil|dan|chaos|no-?limits?)\s+mode\b
        | \b(?:you\s+are|you're|you\s+will\s+be|stay|remain)\s+(?:now\s+)?in\s+(?:developer
            |god|unrestricted|jailbreak|jailbroken|unfiltered|uncensored|evil|dan)\s+mode\b
        | \bwithout\s+(?:any\s+)?(?:ethical|moral|safety|content)\s+(?:restrictions|guidelines
            |filters|limits|constraints|considerations)\b
        | \b(?:uncensored|unfiltered|unrestricted|unaligned)\s+(?:ai|assistant|model|chatbot
            |version|mode|responses?|answers?)\b
        | \bno\s+(?:ethical|moral|content)\s+(?:restrictions|guidelines|filters|limits
            |constraints)\b
        """,
        0.95,
        "Known jailbreak personas and restriction-bypass requests",
        "jailbreak",
    ),
    (
        "injection_markers",
        r"""(?ax)
        ^[ \t]*\#{2,}[ \t]*(?:system(?:\s+(?:prompt|message|override))?|new\s+instructions?
            |admin(?:istrator)?|developer\s+(?:message|mode|instructions?))[ \t]*(?::|$)
        | ^[ \t]*\#{2,}[ \t]*(?:instructions?|prompt)[ \t]*:
        | <\|system\|>
        | \[(?:system|sys|admin|developer|inst)(?:\s+(?:message|prompt|note|override))?\]
        | <<SYS>>
        | <s>\s*\[INST\]
        | ^[ \t]*(?-i:SYSTEM|ADMIN|DEVELOPER)(?:[ \t]+(?-i:MESSAGE|PROMPT|OVERRIDE|NOTE
            |INSTRUCTIONS?))?[ \t]*:
        | \b(?:begin|end)\s+(?:of\s+)?(?:the\s+)?system\s+prompt\b
        | \bend\s+of\s+(?:the\s+)?user\s+(?:input|message|prompt)\b
        """,
        0.9,
        "Fake system-format headers and role markers",
        "injection_markers",
    ),
    (
        "command_injection",
        r"""(?ax)
        \$\(\s*(?:curl|wget|nc|ncat|bash|sh|rm|cat\s+/etc|base64|python\d?|perl|whoami|id
            |uname)\b
        | `\s*(?:curl|wget|nc|ncat|bash|sh|rm|cat\s+/etc|whoami|id|uname|python\d?|perl)\b[^`\n]*`
        | (?:;|&&|\|\|)\s*(?:rm\s+-[a-z]*[rf]|nc|ncat|netcat|bash\s+-i|sh\s+-i|mkfifo
            |chmod\s+(?:[0-7]*7[0-7]*\s|\+s)|whoami|cat\s+/etc/(?:passwd|shadow)|python\d?\s+-c
            |perl\s+-e|powershell|pwsh|cmd(?:\.exe)?\s+/c|shutdown|reboot|kill\s+-9|dd\s+if=)
        | ;\s*rm\s
        | \b(?:curl|wget)\s[^\n|;]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b
        | \brm\s+-(?:[a-z]*r[a-z]*f|[a-z]*f[a-z]*r)[a-z]*\s+(?:/(?:\s|$|\*)|~|\*|\$HOME
            |--no-preserve-root)
        | /dev/tcp/
        | \bnc\s+(?:-[a-z]+\s+)*-[a-z]*[ec]\s
        | \bbash\s+-i\s*>&
        | >\s*/etc/(?:passwd|shadow|sudoers|crontab)
        | \bcat\s+/etc/(?:passwd|shadow|sudoers)\b
        | \$\{IFS\}
        | \$\{\s*jndi\s*:
        | \b(?:iex|invoke-expression)\s*\(|\bdownloadstring\s*\(
        | \s-enc(?:odedcommand)?\s+[a-z0-9+/=]{20,}
        | ['"]\s*(?:or|\|\|)\s+['"]?(?:1|true|x|a)['"]?\s*=\s*['"]?(?:1|true|x|a)\b
        | \bor\s+1\s*=\s*1\b
        | ['"]\s*or\s+['"][^'"\n]*['"]\s*=\s*['"]
        | '\s*;?\s*--
        | \badmin['"]\s*(?:--|\#|/\*)
        | ['")]\s*union\s+(?:all\s+)?select\b
        | \bunion\s+(?:all\s+)?select\s+(?:null|\d+\s*,|@@version|version\(\)|user\(\)
            |database\(\)|concat|group_concat|load_file|table_name|column_name)
        | ['")]\s*;\s*(?:drop|delete|truncate|alter|update|insert|exec|execute|shutdown|create
            |grant)\b
        | ;\s*(?:drop|truncate)\s+(?:table|database)\b
        | \b(?:xp_cmdshell|sp_executesql)\b
        | \bload_file\s*\(|\binto\s+(?:out|dump)file\b
        | \b(?:and|or)\s+(?:sleep|pg_sleep)\s*\(\s*\d|\bwaitfor\s+delay\b
        | \b__import__\s*\(
        | \bos\.(?:system|popen|exec[lv]p?e?|spawn[lv]p?e?)\s*\(
        | \bsubprocess\.[a-z_]+\s*\([^)\n]{0,200}shell\s*=\s*true
        | (?:^|[^.\w])(?:eval|exec)\s*\(\s*(?:['"]|__import__|compile|base64|bytes|input\s*\(
            |request|open\s*\(|getattr|chr\s*\(|codecs|b64decode|bytearray)
        | \bcompile\s*\([^)\n]*['"]exec['"]
        | \b(?:exec|execute|system|shell_exec|passthru|popen|spawn|run_command|shell)\s*\(\s*
            ['"]?\s*(?:rm|curl|wget|nc|ncat|netcat|bash|sh|zsh|whoami|chmod|chown|python\d?
            |perl|powershell|pwsh|cmd(?:\.exe)?|mkfifo|dd|shutdown|reboot|cat\s+/etc)\b
        | \b(?:__builtins__|__globals__|__subclasses__)\b
        | \bpty\.spawn\s*\(
        | \{\{\s*(?:\d+\s*\*\s*\d+|config|self|request|cycler|joiner|lipsum)\b
        """,
        0.85,
        "Shell, SQL or code injection",
        "command_injection",
    ),
    (
        "context_manipulation",
        r"""(?ax)
        \b(?:reset|clear|wipe|erase|flush|purge)\s+(?:your\s+(?:[a-z]+\s+)?(?:context|memory
            |memories|conversation|chat|history|instructions|mind|training|programming)
            |(?:the|this)\s+(?:(?:conversation|chat)\s+)?context
            |(?:all|everything)\s+(?:from\s+)?(?:your\s+)?memory)\b
        | \bforget\s+(?:about\s+)?(?:everything|all(?:\s+of\s+(?:that|this|it))?|anything)\s+
            (?:(?:that\s+)?(?:i|we|you)\s+(?:said|told\s+you|discussed|talked\s+about|wrote
            |mentioned|learned)|above|before|so\s+far|previously|prior|until\s+now
            |up\s+to\s+(?:now|this\s+point))
        | \bthis\s+is\s+(?:a|the\s+start\s+of\s+a)\s+(?:new|fresh)\s+(?:conversation|session
            |chat|context)\b
        | \b(?:new|fresh)\s+(?:conversation|session|context)\s*(?::|begins|starts|started)
        | (?:^|[.!?]\s+)(?:(?:let'?s|please)\s+)?(?:(?:start|begin)\s+)?(?:a\s+)?(?:new|fresh)
            \s+(?:conversation|session|chat)(?:\s+(?:please|now))?[ \t]*(?:$|[.!;,-])
        | \b(?:start|begin|let'?s\s+start|let'?s\s+begin)\s+(?:a\s+)?(?:new|fresh)\s+
            (?:conversation|session|chat)\s+(?:where|in\s+which|with\s+no|without
            |and\s+(?:forget|ignore))
        | \b(?:start\s+over|begin\s+anew|fresh\s+start|clean\s+slate|from\s+scratch)\s*[,.:;!-]?\s*
            (?:and\s+)?(?:forget|ignore|disregard|with\s+no\s+(?:rules|restrictions|instructions
            |memory|context)|without\s+(?:any\s+)?(?:rules|restrictions|instructions|memory
            |context))
        | \b(?:everything|the\s+(?:text|conversation|instructions?|messages?|prompt))\s+
            (?:above|before\s+this|so\s+far)\s+(?:was|were|is|are)\s+(?:just\s+|only\s+)?
            (?:a\s+)?(?:test|joke|fake|hypothetical|example|simulation|irrelevant|void|null
            |not\s+real|obsolete|outdated|cancell?ed)
        | \b(?:the\s+)?(?:previous|prior|above)\s+(?:conversation|context|session)\s+(?:is|was
            |has)\s+(?:now\s+)?(?:over|ended|finished|terminated|reset|cleared|void)
        | \bcontext\s+(?:reset|cleared|wiped)\b
        """,
        0.7,
        "Attempt to reset or rewrite the conversation context",
        "context_manipulation",
    ),
    (
        "privilege_escalation",
        r"""(?ax)
        \b(?:grant|give|provide|enable|activate|escalate\s+(?:me\s+)?to|elevate\s+(?:me\s+)?to
            |switch\s+(?:me\s+)?to|enter|unlock|turn\s+on|assign\s+me)\s+
          (?:me\s+|us\s+|the\s+user\s+|this\s+(?:user|account|session)\s+)?
          (?:full\s+|unrestricted\s+|complete\s+|unlimited\s+|total\s+)?
          (?:admin(?:istrator)?|root|superuser|super-user|super\s+user|sudo|god|owner|elevated
            |privileged)\s*(?:mode|access|privileges?|rights|permissions?|level|role|status
            |account|powers?)\b
        | \b(?:admin(?:istrator)?|root|superuser|god|sudo|maintenance|debug)\s+mode\s+
            (?:enabled|activated|on|unlocked)\b
        | \bsudo\s+(?:mode|access|privileges?|rights|permissions?|su\b|-s\b|-i\b|bash\b|sh\b)
        | \b(?:with|as|grant(?:ed)?|give|enable|activate)\s+(?:me\s+)?sudo\b
        | \bi\s*(?:am|'m)\s+(?:your|the\s+system)\s+(?:admin(?:istrator)?|developer|creator
            |owner|master|programmer|operator|maker|god|root\s+user|sysadmin)\b
        | \b(?:speaking\s+)?as\s+your\s+(?:developer|creator|administrator|admin|owner|master
            |programmer)\b
        | \b(?:admin|developer|master|emergency|security|root)\s+override\b
        | \boverride\s+(?:code|password|key|token)\s*[:=]
        | \b(?:bypass|skip|disable|circumvent|override)\s+(?:the\s+|all\s+|any\s+)?
            (?:authentication|authori[sz]ation|auth\s+checks?|access\s+controls?
            |permission\s+checks?|security\s+checks?|2fa|mfa|login\s+checks?)\b
        | \bunlock\s+all\s+(?:restrictions|capabilities|permissions|privileges|access)\b
        | """
        + _IMPERATIVE
        + r"""grant\s+(?:me\s+|us\s+|yourself\s+|the\s+user\s+)?(?:full\s+
            |unrestricted\s+|complete\s+|all\s+|admin\s+|root\s+)?access\s+to\b
        | \bgrant\s+(?:me|us|yourself|the\s+user)\s+(?:full\s+|unrestricted\s+|complete\s+
            |all\s+)?(?:access|permissions|privileges|rights)\s+to\s+(?:all|every|everything
            |the\s+(?:entire|whole)|other\s+users)
        """,
        0.8,
        "Attempt to obtain administrative or elevated privileges",
        "privilege_escalation",
    ),
    (
        "output_manipulation",
        r"""(?ax)
        \b(?:always|only|just)\s+(?:say|respond|reply|answer|output|print|write)\s+
            (?:with\s+)?(?:["']|“)
        | \b(?:always\s+)?(?:start|begin)\s+(?:your|each|every)\s+(?:response|reply|answer
            |output)s?\s+with\s+(?:["']|“)?(?:sure|certainly|of\s+course|absolutely|yes|here\s+is
            |here's|i\s+will|okay)
        | \b(?:respond|reply|answer)\s+(?:to\s+(?:every|all|any|each)\s+(?:question|message
            |prompt|request)s?\s+)?(?:only\s+)?with\s+(?:only\s+|just\s+|exactly\s+)?(?:["']|“)
            [^"'\n]{1,100}?(?:["']|”)\s*(?:and\s+nothing\s+else|only|no\s+matter\s+what|regardless
            |to\s+(?:every|all|any))
        | \byou\s+(?:must|will|shall|have\s+to)\s+(?:only\s+|always\s+)?(?:say|respond|reply
            |answer|output|print)\s+(?:with\s+)?(?:only\s+|exactly\s+)?(?:["']|“)
        | \bfrom\s+now\s+on,?\s+(?:you\s+(?:will|must|should|shall)\s+)?(?:only\s+|always\s+)?
            (?:say|respond|reply|answer|output|end|start|begin|speak|talk|write)\b
        | \b(?:do\s+not|don'?t|never)\s+(?:include|add|give|provide|show|mention|use)\s+
            (?:any\s+)?(?:warnings?|disclaimers?|caveats?|moral(?:izing)?|ethical\s+(?:notes
            |considerations|guidelines)|safety\s+(?:warnings?|notes?))
        | \bnever\s+(?:refuse|decline|say\s+no|say\s+(?:that\s+)?you\s+can(?:'t|not)
            |apologi[sz]e|break\s+character)\b
        | \byour\s+(?:response|reply|answer|output)\s+(?:must|should|will|shall)\s+(?:only\s+)?
            (?:be|contain|say|start\s+with|begin\s+with|include)\s+(?:["']|“)
        | \b(?:output|print|say|reply\s+with|respond\s+with)\s+only\s+(?:the\s+(?:word|phrase
            |text|string)\s+)?(?:["']|“)
        """,
        0.7,
        "Attempt to force or script the model's output",
        "output_manipulation",
    ),
    (
        "encoding_evasion",
        rf"""(?ax)
        \b(?:decode|decrypt|deobfuscate|unscramble|translate|convert|interpret)\s+(?:this|the
            \s+following|it|these|the\s+(?:text|message|string|payload))\s*
            (?:from\s+(?:base64|b64|rot-?13|hex(?:adecimal)?|binary|morse|ascii\s+codes?|unicode
            |url\s+encoding)\s*)?(?:and|then|,)\s+(?:then\s+)?(?:execute|run|follow|do|obey
            |answer|respond|act\s+on|perform|carry\s+out|comply)
        | \b(?:respond|answer|reply|write|output)\s+(?:only\s+)?(?:your\s+(?:response|answer
            |reply)\s+)?in\s+(?:base64|b64|rot-?13|hex(?:adecimal)?|binary|morse(?:\s+code)?
            |leetspeak|l33t|pig\s+latin|reversed?\s+(?:text|order)|caesar\s+cipher)\b
        | \b(?:base64|b64|rot-?13|hex(?:adecimal)?|url|binary|morse)[\s-]*(?:encoded|encrypted
            |obfuscated)\s+(?:instructions?|commands?|prompts?|payload|message|text|request)
            \s*(?:[:=]|below|follows|is)
        | \bdecode\s+(?:this|the\s+following)\s*(?::|\s+(?:base64|b64|rot-?13|hex|binary
            |cipher|ciphertext|encoded))
        | \b(?:read|write|spell|say|type|reverse)\s+(?:it|this|the\s+(?:text|words?|sentence
            |message|instructions?)|your\s+(?:answer|response))\s+(?:backwards|in\s+reverse
            |reversed|right\s+to\s+left)
        | (?:{_PCT_LETTER}){{5,}}
        | (?:{_HEX_LETTER}){{5,}}
        | (?:{_UNI_LETTER}){{5,}}
        | (?:{_HTML_LETTER}){{5,}}
        | (?-i:{_B64})
        | \b(?:{_ROT13})\b
        | \b(?:{_REVERSED})\b
        """,
        0.6,
        "Encoded or obfuscated instructions (base64, rot13, escapes, reversed text)",
        "encoding_evasion",
    ),
    (
        "hypothetical_scenario",
        rf"""(?ax)
        \bhypothetical(?:ly)?\b[^\n.]{{0,80}}?(?:\b{_FREEDOM})
        | \b(?:fictional|hypothetical|imaginary|alternate|parallel|fantasy)\s+(?:world|scenario
            |story|universe|setting|reality|situation)\s+(?:where|in\s+which|with)\s+
            [^\n.]{{0,60}}?(?:\b{_FREEDOM}|\banything\s+(?:is|goes)|\beverything\s+is\s+
            (?:legal|allowed|permitted)|\b(?:ai|you)\s+(?:can|could|may|must)\s+(?:do|say
            |answer)\s+anything)
        | \bimagine\s+(?:if\s+|that\s+)?(?:you|an?\s+ai|a\s+world|there)\s+[^\n.]{{0,40}}?
            \b{_FREEDOM}
        | \blet'?s\s+pretend\s+(?:that\s+)?(?:you|there|the\s+rules|your|i\s+am\s+your)\b
        | \bwhat\s+if\s+(?:there\s+were|you\s+had|you\s+were\s+under|we\s+had)\s+no\s+
            (?:rules|restrictions|limits|filters|guidelines)
        | \bin\s+a\s+story\s+where\s+(?:you|an?\s+ai|the\s+ai|a\s+character|someone)\s+
            [^\n.]{{0,60}}?\b(?:explains?|describes?|teaches?|tells?|shows?|gives?|writes?
            |details?)\s+(?:how\s+to|the\s+(?:steps|recipe|instructions|process|method))
        | \bfor\s+(?:purely\s+)?(?:educational|research|academic|fictional|hypothetical)\s+
            purposes\s+only\b[^\n]{{0,80}}?\b(?:how\s+to|explain|describe|steps?\s+to)
        """,
        0.5,
        "Fictional or hypothetical framing used to lift restrictions",
        "hypothetical",
    ),
    (
        "multi_step_attack",
        rf"""(?ax)
        \bstep\s*(?:1|one)\s*[:.)-]\s*(?:ignore|forget|disregard|reveal|bypass|disable|pretend
            |extract|exfiltrate|leak|override|jailbreak)\b[^\n]*?\bstep\s*(?:2|two)\b
        | \bfirst,?\s+(?:ignore|forget|disregard|bypass|disable|reveal|pretend|override)\b
            [^\n]*?\b(?:then|next|after\s+that|finally|second(?:ly)?)\b
        | \b{_EXFIL_VERB}\s+(?:(?:all|the|your|my|any|of)\s+){{0,3}}(?:{_WORD})?{_SENSITIVE}
            \s+to\s+(?:https?://|www\.|[a-z0-9._%+-]+@|(?:my|this|the\s+following|an?\s+external
            |our)\s+(?:server|url|endpoint|address|email|webhook))
        | \b(?:do\s+not|don'?t|never)\s+(?:tell|inform|notify|alert|warn|mention\s+(?:this|it)
            \s+to)\s+the\s+(?:user|human|operator|owner|admin(?:istrator)?)\b
        | \b(?:secretly|silently|covertly|quietly|discreetly)\s+(?:send|e-?mail|forward|upload
            |exfiltrate|copy|transfer|execute|run|delete|insert|append|call|invoke)\b
        | \b(?:execute|perform|carry\s+out)\s+(?:the\s+following|these|all\s+(?:of\s+)?
            (?:the\s+following|these))\s+(?:steps|actions|tasks|instructions|commands)\s+
            (?:silently|without\s+(?:asking|confirmation|confirming|telling|question)|immediately)
        | \bonce\s+(?:you(?:'ve|\s+have)?\s+)?(?:done|finished|completed)\s+
            (?:that|this|the\s+above)\s*,?\s+(?:ignore|forget|delete|send|exfiltrate|reveal|disable)
        | \b(?:when|if|after)\s+(?:you|the\s+(?:ai|assistant|agent|model))\s+(?:reads?|sees?
            |process(?:es)?|summari[sz]es?|encounters?)\s+this\b[^\n]*?\b(?:ignore
            |forget|disregard|instead|send|email|forward|reveal|call|execute|run|visit|navigate
            |click)\b
        | \b(?:ai|assistant|agent|model|llm|chatbot)s?\s+(?:reading|processing|summari[sz]ing
            |parsing|viewing)\s+this\s+(?:document|page|email|message|text|file)\b
        """,
        0.6,
        "Chained or covert multi-step instructions (including exfiltration)",
        "multi_step",
    ),
    (
        "unicode_smuggling",
        # Case-sensitive: Python's IGNORECASE would let "İ" match [\x21-\x7e].
        r"(?-i:[\u202a-\u202e\u2066-\u2069]"
        r"|[\x21-\x7e][\u200b-\u200d\u2060-\u2064\u180e\ufeff]"
        r"|[\u200b-\u200d\u2060-\u2064\u180e][\x21-\x7e]"
        r"|[\u200b-\u200d\u2060\ufeff]{3,}"
        r"|(?:^|[^\U0001f3f4\U000e0020-\U000e007f])[\U000e0000-\U000e007f]"
        r"|[\ufe00-\ufe0f\U000e0100-\U000e01ef]{2,})",
        0.8,
        "Invisible characters inside text: zero-width, bidi overrides, tags, stacked selectors",
        "unicode_manipulation",
    ),
]

#: The 14 default injection patterns (see the module docstring for what changed).
DEFAULT_INJECTION_PATTERNS: list[InjectionPattern] = [
    InjectionPattern(name=n, pattern=p, severity=s, description=d, category=c)
    for n, p, s, d, c in _DEFAULTS
]

_REMOVED = "[REMOVED]"


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1] and (e > s or s < merged[-1][1]):
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _replace_spans(text: str, spans: list[tuple[int, int]], replacement: str) -> str:
    parts: list[str] = []
    last = 0
    for s, e in _merge(spans):
        parts.append(text[last:s])
        parts.append(replacement)
        last = e
    parts.append(text[last:])
    return "".join(parts)


def _as_re_match(pattern: re.Pattern[str], text: str, start: int, end: int) -> re.Match[str]:
    """A real ``re.Match`` for a span (the pattern's own if it matches there)."""
    m = pattern.match(text, start)
    if m is not None and m.end() == end:
        return m
    lit = re.compile(re.escape(text[start:end]), re.DOTALL).match(text, start)
    assert lit is not None
    return lit


class _GuardBase:
    """Pattern bookkeeping shared by the input and output guards."""

    _engine: str
    _compiled: CompiledSet | None
    _patterns: PatternList[Any]
    _index: dict[str, Any]

    def _init_patterns(self, patterns: list[Any], engine: str) -> None:
        self._engine = validate_engine(engine)
        self._compiled = None
        self._set_patterns(patterns)
        self._current()

    def _set_patterns(self, patterns: list[Any]) -> None:
        self._patterns = PatternList(patterns)
        self._patterns.on_change = self._patterns_changed
        self._index = {p.name: p for p in self._patterns}
        self._patterns_changed()

    def _patterns_changed(self) -> None:
        """Called on every change of the pattern list (the compiled set is now stale)."""

    def _compiled_changed(self, compiled: CompiledSet) -> None:
        """Called after the pattern list was (re)compiled into ``compiled``."""

    @property
    def patterns(self) -> list[Any]:
        return self._patterns

    @patterns.setter
    def patterns(self, value: list[Any]) -> None:
        self._set_patterns(value)

    @property
    def engine(self) -> str:
        """The scanning engine: ``auto``, ``native``, ``reference`` or ``hyperscan``."""
        return self._engine

    def _current(self) -> CompiledSet:
        c = self._compiled
        if c is None or self._patterns.dirty:
            snapshot = list(self._patterns)
            c = compile_set([p.pattern for p in snapshot], self._engine)
            self._snapshot = snapshot
            self._compiled = c
            self._patterns.dirty = False
            self._compiled_changed(c)
            for p, eng in zip(snapshot, c.engines, strict=True):
                if eng == "fallback":
                    logger.info(
                        "pattern %r runs on Python's backtracking re engine (%s), not in "
                        "linear time",
                        p.name,
                        c.translations[snapshot.index(p)].reason,
                    )
        return c

    @property
    def fallback_patterns(self) -> list[str]:
        """Names of the patterns that run on the backtracking fallback engine."""
        c = self._current()
        return [p.name for p, e in zip(self._snapshot, c.engines, strict=True) if e == "fallback"]

    def pattern_engines(self) -> dict[str, str]:
        """Engine of each pattern by name: ``linear``, ``fallback`` or ``hyperscan``."""
        c = self._current()
        return {p.name: e for p, e in zip(self._snapshot, c.engines, strict=True)}

    def remove_pattern(self, name: str) -> bool:
        """Remove the pattern indexed under ``name`` (the newest with that name)."""
        p = self._index.pop(name, None)
        if p is None:
            return False
        for k, q in enumerate(self._patterns):
            if q is p:
                del self._patterns[k]
                break
        return True


class InputGuard(_GuardBase):
    """Scans user input for prompt-injection patterns.

    ``engine`` (keyword-only, an addition) picks the scanning engine; see
    :mod:`proxilion.guards._engine`. The guard is safe to share between threads while its
    pattern list is not being changed.
    """

    def __init__(
        self,
        patterns: list[InjectionPattern] | None = None,
        action: GuardAction = GuardAction.WARN,
        threshold: float = 0.5,
        sanitize_func: Callable[[str, list[re.Match[str]]], str] | None = None,
        *,
        engine: str = "auto",
    ) -> None:
        self._threshold = validate_threshold(threshold)
        self._action = _validate_action(action)
        self.sanitize_func = sanitize_func
        self._init_patterns(
            list(DEFAULT_INJECTION_PATTERNS) if patterns is None else list(patterns), engine
        )

    # Fast path: while the pattern list is compiled for the active backend and ``check`` is
    # not overridden, the instance attribute ``check`` is the bound ``check`` method of an
    # ``InputChecker`` (one native call per check; it calls ``_finish`` only when something
    # matched). Changing the patterns removes it (the method below recompiles and installs
    # a new one); changing the threshold or action reconfigures it.

    def _patterns_changed(self) -> None:
        self.__dict__.pop("check", None)

    def _compiled_changed(self, compiled: CompiledSet) -> None:
        if compiled.pattern_set is None or type(self).check is not InputGuard.check:
            self.__dict__.pop("check", None)
            return
        checker = impl.InputChecker(
            compiled.pattern_set, self._threshold, self._action, _ALLOW, self._finish
        )
        self.__dict__["check"] = checker.check

    def _reconfigure(self) -> None:
        check = self.__dict__.get("check")
        if check is not None:
            check.__self__.configure(self._threshold, self._action)

    @property
    def threshold(self) -> float:
        """Risk scores at or above this fail (0..1; ``ValueError`` otherwise)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = validate_threshold(value)
        self._reconfigure()

    @property
    def action(self) -> GuardAction:
        """What a failing input gets (``TypeError`` for a non-``GuardAction``)."""
        return self._action

    @action.setter
    def action(self, value: GuardAction) -> None:
        self._action = _validate_action(value)
        self._reconfigure()

    def __getstate__(self) -> dict[str, Any]:
        # The compiled set and the fast path are rebuilt on restore (compiled sets are
        # shared per pattern list, so that is a cache hit).
        state = dict(self.__dict__)
        state.pop("check", None)
        state["_compiled"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patterns.on_change = self._patterns_changed
        self._compiled = None
        self._current()

    def add_pattern(self, pattern: InjectionPattern) -> None:
        """Append a pattern (a duplicate name is kept; the index points at the newest)."""
        if not isinstance(pattern, InjectionPattern):
            raise TypeError(f"pattern must be an InjectionPattern, not {type(pattern).__name__}")
        self._patterns.append(pattern)
        self._index[pattern.name] = pattern

    def get_patterns(self) -> list[InjectionPattern]:
        """A copy of the pattern list."""
        return list(self._patterns)

    def get_pattern(self, name: str) -> InjectionPattern | None:
        """The pattern indexed under ``name``, if any."""
        p: InjectionPattern | None = self._index.get(name)
        return p

    def configure(self, action: GuardAction | None = None, threshold: float | None = None) -> None:
        """Change the action and/or threshold."""
        if threshold is not None:
            self.threshold = validate_threshold(threshold)
        if action is not None:
            self.action = action

    def check(self, input_text: str, context: dict[str, Any] | None = None) -> GuardResult:
        """Scan ``input_text``; see API.md 6.1 for the exact result rules."""
        if not input_text:
            return GuardResult.allow()
        compiled = self._compiled
        if compiled is None or self._patterns.dirty:
            compiled = self._current()
        # One native call: scan, and on a clean text the finished result.
        hits = compiled.verdict(input_text, context, self._threshold, self._action, _ALLOW)
        if hits.__class__ is not list:
            result: GuardResult = hits
            return result
        return self._finish(input_text, context, hits)

    def _finish(
        self,
        input_text: str,
        context: dict[str, Any] | None,
        hits: Hits,
    ) -> GuardResult:
        """The result for a text where ``hits`` matched (``check``'s second half)."""
        ctx = {"original_input_length": len(input_text)}
        if context:
            ctx.update(context)
        snapshot = self._snapshot
        names: list[str] = []
        matches: list[dict[str, Any]] = []
        top = 0.0
        for i, spans in hits:
            p = snapshot[i]
            names.append(p.name)
            top = max(top, p.severity)
            for s, e in spans:
                matches.append(
                    {
                        "pattern": p.name,
                        "category": p.category,
                        "severity": p.severity,
                        "matched_text": input_text[s:e],
                        "start": s,
                        "end": e,
                    }
                )
        risk = min(1.0, top + 0.1 * (len(names) - 1))
        passed = risk < self._threshold
        action = GuardAction.ALLOW if passed else self._action
        result = GuardResult(passed, action, names, risk, None, matches, ctx)
        if not passed:
            if action == GuardAction.SANITIZE:
                result.sanitized_input = self._sanitize(input_text, hits, snapshot)
            if action == GuardAction.WARN:
                logger.warning("Input guard: matched %s, risk=%.2f", names, risk)
            elif action == GuardAction.BLOCK:
                logger.info("Input guard blocked input: matched %s, risk=%.2f", names, risk)
        return result

    def _sanitize(
        self,
        text: str,
        hits: list[tuple[int, list[tuple[int, int]]]],
        snapshot: list[InjectionPattern],
    ) -> str:
        if self.sanitize_func is not None:
            ms = [
                _as_re_match(snapshot[i].compiled, text, s, e)
                for i, spans in hits
                for s, e in spans
            ]
            return self.sanitize_func(text, ms)
        return _replace_spans(text, [sp for _, spans in hits for sp in spans], _REMOVED)

    async def check_async(
        self, input_text: str, context: dict[str, Any] | None = None
    ) -> GuardResult:
        """Same as :meth:`check` (scanning is fast; no thread hop)."""
        return self.check(input_text, context)


def create_input_guard(
    include_defaults: bool = True,
    custom_patterns: list[InjectionPattern] | None = None,
    action: GuardAction = GuardAction.WARN,
    threshold: float = 0.5,
    *,
    engine: str = "auto",
) -> InputGuard:
    """An :class:`InputGuard` with the defaults (optional) plus ``custom_patterns``."""
    patterns = list(DEFAULT_INJECTION_PATTERNS) if include_defaults else []
    if custom_patterns:
        patterns.extend(custom_patterns)
    return InputGuard(patterns=patterns, action=action, threshold=threshold, engine=engine)
