"""The one system prompt and the one prompt per task, used identically in SFT, GRPO, evaluation
and scoring (the released code used different wordings at train and eval time; we do not).

The wording is the released training wording.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["iqa", "iaa"]
TASKS: tuple[Task, ...] = ("iqa", "iaa")

SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\n"
    "The Assistant may include optional reasoning inside <think>...</think> (it may be brief or detailed).\n"
    "The final answer MUST be provided inside <answer>...</answer>.\n"
    "Inside <answer>, output ONLY a single numeric rating (a float), with no extra text.\n"
    "If <think> is present, it must appear before <answer>."
)

TASK_PROMPTS: dict[str, str] = {
    "iqa": (
        "TASK: Image Quality Assessment (IQA).\n"
        "What is your overall rating on the quality of the given picture?\n"
        "The rating should be a float between 0 and 100, rounded to two decimal places, "
        "with 0 representing very poor quality and 100 representing excellent quality.\n"
        "You may answer briefly without detailed reasoning.\n"
        "In <answer>, output ONLY the numeric score (e.g., 73.42)."
    ),
    "iaa": (
        "TASK: Image Aesthetic Assessment (IAA).\n"
        "What is your overall rating on the aesthetic quality of the given picture?\n"
        "The rating should be a float between 0 and 100, rounded to two decimal places, "
        "with 0 representing very poor aesthetics and 100 representing excellent aesthetics.\n"
        "Consider composition, lighting, color harmony, subject presentation, balance, style, "
        "and emotional impact.\n"
        "In <answer>, output ONLY the numeric score (e.g., 73.42)."
    ),
}


def check_task(task: str) -> Task:
    """Return `task` normalised to 'iqa' or 'iaa', or raise a ValueError naming the bad value."""
    t = str(task).strip().lower()
    # Accept the released code's task names too.
    t = {"iqa_score": "iqa", "iaa_score": "iaa"}.get(t, t)
    if t not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return t  # type: ignore[return-value]


def build_messages(task: str) -> list[dict]:
    """Chat messages (system + user with one image placeholder) for one image and one task.

    The image itself is passed separately (TRL and the processors pair `{"type": "image"}`
    placeholders with an `images` column in order).
    """
    task = check_task(task)
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": TASK_PROMPTS[task]}],
        },
    ]


def prompt_version() -> str:
    """A short fingerprint of the prompt wording (system + task prompts), recorded with scores.

    It changes whenever a word of a prompt does, so scores made with different wordings are
    never mixed up by name alone.
    """
    import hashlib

    text = "\x00".join([SYSTEM_PROMPT, *(TASK_PROMPTS[t] for t in TASKS)])
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
