"""Teacher and judge prompts of the rationale pipeline: the one place they live, versioned.

Wording follows the released generators and judges (score-conditioned "reverse" rationales,
strict auditor judges), with these changes: the score is shown on the 0-100 scale the model
answers on (two decimals) and must be copied exactly; the IQA word minimum is stated (and
enforced by the rules); IAA narratives are 100-150 words over the eight aesthetic aspects; the
IAA teacher may see the image, the expert notes, or both. Any change of wording must bump
PROMPT_VERSION: the version and the full templates go into every output's metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from string import Template

PROMPT_VERSION = "tatar-rationales-v1"

# The eight aesthetic aspects, keyed as ArtiMuse-10K keys its expert attribute texts, in the
# order the released generator presented them.
AESTHETIC_ASPECTS: dict[str, str] = {
    "visual_elements": "Visual elements (colour, light, tone, texture)",
    "composition_structure": "Composition and structure",
    "overall_gestalt": "Overall gestalt and harmony",
    "technical_execution": "Technical execution",
    "theme_communication": "Theme and its communication",
    "emotion_viewer_response": "Emotion and viewer response",
    "originality_creativity": "Originality and creativity",
    "overall_evaluation": "Overall evaluation",
}

# Each expert note shown to the judge is cut to this many characters (as released).
JUDGE_NOTE_MAX_CHARS = 1200

IQA_TEACHER_SYSTEM = """\
You are an expert in image quality assessment (IQA).
You are shown an image together with its ground-truth technical quality score, and you explain that score.
Rules:
- Output exactly <think>brief technical description</think><answer>SCORE</answer> and nothing else.
- Judge technical quality only: sharpness or blur, noise, compression artifacts, exposure, dynamic range, colour cast. Ignore aesthetics, subject appeal and composition.
- Describe only defects and strengths that are actually visible; do not invent details.
- Never state, round or paraphrase the numeric score inside <think>, and write no numbers there.
- Inside <answer>, copy the given score exactly, with its two decimals.
- Plain prose: no lists, headings, role labels or code fences."""

IQA_TEACHER_USER = Template("""\
Ground-truth quality score: $score (0-100 scale: 0 = very poor quality, 100 = excellent quality; roughly 0-20 bad, 20-40 poor, 40-60 fair, 60-80 good, 80-100 excellent).
Write a brief technical description that explains this score, in exactly 2 sentences and $min_words-$max_words words, naming the 1-2 factors that matter most (e.g. sharpness or blur, noise, compression artifacts, exposure, colour cast).
Let the severity you describe match the score without stating it.
Answer in exactly this form: <think>...</think><answer>$score</answer>""")

IAA_TEACHER_SYSTEM = Template("""\
You are an expert in image aesthetics assessment (IAA).
$evidence
Rules:
- Output exactly <think>narrative</think><answer>SCORE</answer> and nothing else.
- Ground every statement in the evidence; do not introduce visual details it does not support.
- Do not copy any sentence longer than 15 words from the expert notes; paraphrase.
- Do not change the score, never state, round or paraphrase it inside <think>, and write no numbers there.
- Write one flowing paragraph: no lists, numbered steps, headings, role labels or code fences.""")

IAA_TEACHER_EVIDENCE: dict[str, str] = {
    "image+notes": (
        "You are shown an image, expert notes on its aesthetic attributes and its ground-truth "
        "aesthetic score, and you write the deliberation that leads to that score."
    ),
    "image": (
        "You are shown an image and its ground-truth aesthetic score, and you write the "
        "deliberation that leads to that score."
    ),
    "notes": (
        "You cannot see the image: you are given expert notes on its aesthetic attributes and its "
        "ground-truth aesthetic score, and you write the deliberation that leads to that score "
        "from the notes alone."
    ),
}

IAA_TEACHER_USER = Template("""\
${notes}Final aesthetic score (must remain unchanged): $score (0-100 scale: 0 = very poor aesthetics, 100 = excellent aesthetics; scores below 30 are clearly low aesthetic quality).
Requirements:
- $min_words-$max_words words inside <think> (aim for about $mid_words), one narrative paragraph.
- Reason through at least $min_aspects of these aspects, linking each observation to its effect (because, so, therefore): visual elements (colour, light, tone), composition and structure, overall gestalt and harmony, technical execution, theme and its communication, emotion and viewer response, originality and creativity, and an overall evaluation.
${order}- Let the narrative arrive at a judgement whose strength matches the score, without stating it.
Answer in exactly this form: <think>...</think><answer>$score</answer>""")

IAA_TEACHER_ORDER = "- Follow the order of the expert notes above.\n"

NOTES_HEADER = "Expert notes on the image's aesthetic attributes:\n"

IQA_JUDGE_SYSTEM = """\
You are an extremely strict and conservative IQA data auditor.
You check a short technical rationale written to explain an image's ground-truth quality score: is every claim supported by the image, is it concrete and technical, and does the severity it describes match the score?
Answer with one JSON object and nothing else."""

IQA_JUDGE_USER = Template("""\
$image_note
Scale: 0-100 (0 = very poor quality, 100 = excellent quality).
Ground-truth score: $score
Rationale to audit:
<<<
$rationale
>>>
Score each criterion from 0 to 5:
- visual_fidelity: every defect or strength it claims is visible in the image (a hallucinated defect means 2 or less).
- technical_rigor: concrete technical evidence (sharpness, noise, compression, exposure, colour), not boilerplate.
- score_consistency: the severity it describes matches the magnitude of the score.
Decide "reject" if visual_fidelity or score_consistency is 2 or less, if any defect is invented, or if the text is generic boilerplate; otherwise decide "keep".
Return exactly this JSON shape:
{"decision": "keep" or "reject", "overall_confidence": 0-100, "scores": {"visual_fidelity": 0-5, "technical_rigor": 0-5, "score_consistency": 0-5}, "major_issues": [strings], "minor_notes": [strings]}""")

IAA_JUDGE_SYSTEM = """\
You are an extremely strict and conservative IAA data auditor.
You check an aesthetic narrative written to explain an image's ground-truth aesthetic score: does it cover enough aesthetic aspects, stay grounded without fabricating or contradicting the evidence, reason causally instead of parroting attributes, and lead smoothly to the magnitude of the score?
Answer with one JSON object and nothing else."""

IAA_JUDGE_USER = Template("""\
$image_note
${notes}Scale: 0-100 (0 = very poor aesthetics, 100 = excellent aesthetics).
Ground-truth score: $score
Local checks (hints, not verdicts): aesthetic aspects touched = $aspects_touched of 8; causal linking words present = $has_linking.
Narrative to audit:
<<<
$rationale
>>>
Score each criterion from 0 to 5:
- attribute_coverage: it reasons about at least $min_aspects aesthetic aspects (visual elements, composition, gestalt, technique, theme, emotion, originality, overall evaluation).
- groundedness_no_fabrication: nothing it says is contradicted by the image or the expert notes, and it invents no details.
- reasoning_cohesion: observations are linked to their effects, not a list of parroted attributes.
- score_derivation_smoothness: the judgement it reaches leads naturally to the magnitude of the score.
Decide "reject" if groundedness_no_fabrication or reasoning_cohesion is 2 or less, or if it fabricates or contradicts the evidence; otherwise decide "keep".
Return exactly this JSON shape:
{"decision": "keep" or "reject", "overall_confidence": 0-100, "scores": {"attribute_coverage": 0-5, "groundedness_no_fabrication": 0-5, "reasoning_cohesion": 0-5, "score_derivation_smoothness": 0-5}, "major_issues": [strings], "minor_notes": [strings]}""")

JUDGE_IMAGE_NOTE: dict[bool, str] = {
    True: "The image is attached.",
    False: "You cannot see the image; judge from the text and notes alone.",
}


def _text(t: str | Template) -> str:
    return t.template if isinstance(t, Template) else t


def catalog() -> dict[str, str]:
    """Every template and fixed fragment, by name: what meta.json records."""
    items: dict[str, str | Template] = {
        "iqa_teacher_system": IQA_TEACHER_SYSTEM,
        "iqa_teacher_user": IQA_TEACHER_USER,
        "iaa_teacher_system": IAA_TEACHER_SYSTEM,
        "iaa_teacher_user": IAA_TEACHER_USER,
        "iaa_teacher_order": IAA_TEACHER_ORDER,
        "notes_header": NOTES_HEADER,
        "iqa_judge_system": IQA_JUDGE_SYSTEM,
        "iqa_judge_user": IQA_JUDGE_USER,
        "iaa_judge_system": IAA_JUDGE_SYSTEM,
        "iaa_judge_user": IAA_JUDGE_USER,
    }
    out = {name: _text(t) for name, t in items.items()}
    out.update({f"iaa_teacher_evidence[{k}]": v for k, v in IAA_TEACHER_EVIDENCE.items()})
    out.update({f"judge_image_note[{k}]": v for k, v in JUDGE_IMAGE_NOTE.items()})
    out.update({f"aspect[{k}]": v for k, v in AESTHETIC_ASPECTS.items()})
    return out


def catalog_sha256() -> str:
    return hashlib.sha256(json.dumps(catalog(), sort_keys=True).encode("utf-8")).hexdigest()


def score_text(target_100: float) -> str:
    """The score as the teacher sees it and must copy: 0-100, two decimals."""
    return f"{target_100:.2f}"


def notes_block(attributes: Mapping[str, str] | None, max_chars: int | None = None) -> str:
    """Expert attribute notes as a numbered list, ArtiMuse's aspects first in their order."""
    if not attributes:
        return ""
    keys = [k for k in AESTHETIC_ASPECTS if k in attributes]
    keys += [k for k in attributes if k not in AESTHETIC_ASPECTS]
    lines = []
    for i, key in enumerate(keys, 1):
        label = AESTHETIC_ASPECTS.get(key, key.replace("_", " ").capitalize())
        text = " ".join(str(attributes[key]).split())
        if max_chars is not None and len(text) > max_chars:
            text = text[:max_chars].rstrip() + " ..."
        lines.append(f"{i}. {label}: {text}")
    return NOTES_HEADER + "\n".join(lines) + "\n"


def teacher_prompt(
    task: str,
    target_100: float,
    *,
    words: tuple[int, int],
    min_aspects: int,
    vision: bool,
    attributes: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(system, user) texts of the teacher request for one record."""
    score = score_text(target_100)
    lo, hi = words
    if task == "iqa":
        user = IQA_TEACHER_USER.substitute(score=score, min_words=lo, max_words=hi)
        return IQA_TEACHER_SYSTEM, user
    if attributes and vision:
        evidence = IAA_TEACHER_EVIDENCE["image+notes"]
    elif vision:
        evidence = IAA_TEACHER_EVIDENCE["image"]
    elif attributes:
        evidence = IAA_TEACHER_EVIDENCE["notes"]
    else:
        raise ValueError("a text-only IAA teacher needs the record's expert attribute notes")
    system = IAA_TEACHER_SYSTEM.substitute(evidence=evidence)
    user = IAA_TEACHER_USER.substitute(
        notes=notes_block(attributes),
        score=score,
        min_words=lo,
        max_words=hi,
        mid_words=(lo + hi) // 2,
        min_aspects=min_aspects,
        order=IAA_TEACHER_ORDER if attributes else "",
    )
    return system, user


def judge_prompt(
    task: str,
    target_100: float,
    rationale: str,
    *,
    vision: bool,
    min_aspects: int,
    aspects_touched: int = 0,
    has_linking: bool = False,
    attributes: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(system, user) texts of the judge request for one rationale."""
    score = score_text(target_100)
    if task == "iqa":
        user = IQA_JUDGE_USER.substitute(
            image_note=JUDGE_IMAGE_NOTE[vision], score=score, rationale=rationale
        )
        return IQA_JUDGE_SYSTEM, user
    user = IAA_JUDGE_USER.substitute(
        image_note=JUDGE_IMAGE_NOTE[vision],
        notes=notes_block(attributes, max_chars=JUDGE_NOTE_MAX_CHARS),
        score=score,
        aspects_touched=aspects_touched,
        has_linking="yes" if has_linking else "no",
        rationale=rationale,
        min_aspects=min_aspects,
    )
    return IAA_JUDGE_SYSTEM, user
