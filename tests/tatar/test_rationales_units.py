"""Rationale pipeline pieces: rule checks, judge verdicts, config, records, client backoff,
image encoding, prompts and the cost estimate."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
from email.utils import formatdate

import httpx
import numpy as np
import pytest
from PIL import Image

from tatar.rationales import prompts
from tatar.rationales.client import (
    ChatCallError,
    ChatClient,
    backoff_delay,
    retry_after_seconds,
)
from tatar.rationales.config import JudgePolicy, RuleConfig, load_config
from tatar.rationales.cost import CostAssumptions, estimate, image_tokens, smart_resize
from tatar.rationales.judge import VerdictError, parse_verdict, policy_violations
from tatar.rationales.messages import image_data_url, request_seed
from tatar.rationales.records import load_items
from tatar.rationales.rules import aspects_touched, check_completion

RULES = RuleConfig()
IQA_THINK = (
    "The photo is sharply focused with crisp edges and fine texture on the main subject. "
    "Mild sensor noise creeps into the darker shadow regions, yet exposure stays balanced and "
    "colours look natural without visible compression artifacts."
)  # 36 words
IAA_THINK = (
    "Warm evening light washes over the harbour and gives the scene a soft golden palette, "
    "because the low sun rakes across the water and picks out gentle texture in the waves. The "
    "composition places the moored boats along a clear diagonal, so the eye travels from the "
    "foreground ropes toward the distant lighthouse, although the horizon sits slightly off "
    "balance. Technically the exposure is well controlled and the focus stays sharp across the "
    "frame, which makes the fine rigging legible. The theme of a quiet return after a working "
    "day comes through clearly, and the calm mood invites the viewer to linger. The approach is "
    "conventional rather than original, leaning on a familiar postcard style, so the overall "
    "impression is pleasant and competent but not striking."
)  # 126 words, 7 aspects


def completion(think: str, answer: str = "61.25") -> str:
    return f"<think>\n{think}\n</think>\n<answer>{answer}</answer>"


def codes(text: str, task: str = "iqa", target: float = 61.25, native=None) -> list[str]:
    res = check_completion(text, task, target, RULES, native_score=native)
    return [v.code for v in res.violations]


def words(n: int) -> str:
    return " ".join(["sharp"] * n)


# ----------------------------------------------------------------------------- rules


def test_good_completions_pass_and_give_the_think_text():
    res = check_completion(completion(IQA_THINK), "iqa", 61.25, RULES)
    assert res.ok and res.rationale == IQA_THINK and res.words == 36
    res = check_completion(completion(IAA_THINK, "23.00"), "iaa", 23.0, RULES)
    assert res.ok and res.words == 126 and len(res.aspects) == 7 and res.has_linking


@pytest.mark.parametrize(("n", "ok"), [(29, False), (30, True), (50, True), (51, False)])
def test_iqa_word_range_is_inclusive_and_the_minimum_is_enforced(n, ok):
    assert (codes(completion(words(n))) == []) is ok
    if not ok:
        assert codes(completion(words(n))) == ["word_count"]


def test_iaa_word_range_and_aspect_minimum():
    assert "word_count" in codes(completion(IAA_THINK + " " + words(30), "23.00"), "iaa", 23.0)
    four = (
        "The colour and light are soft, the composition is centred, the focus is sharp and the "
        "mood is quiet. "
    )
    res = check_completion(completion(four * 6, "23.00"), "iaa", 23.0, RULES)
    assert len(res.aspects) == 4 and [v.code for v in res.violations] == ["aspects"]
    assert "4 of 8" in res.violations[0].detail


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (completion(IQA_THINK) + "<think>again</think>", "tags"),
        (f"<think>{IQA_THINK}</think>", "tags"),
        (f"<answer>61.25</answer><think>{IQA_THINK}</think>", "layout"),
        ("Sure! " + completion(IQA_THINK), "layout"),
        (completion(IQA_THINK, "61.3"), "answer_mismatch"),
        (completion(IQA_THINK, "about 61"), "answer_not_number"),
        (completion("assistant: " + IQA_THINK), "role_marker"),
        (completion(IQA_THINK) + "<|im_end|>", "role_marker"),
        (completion("```\n" + IQA_THINK + "\n```"), "code_fence"),
        (completion("<b>Sharp</b> " + IQA_THINK), "nested_tags"),
        (completion(IQA_THINK + " It deserves 61."), "score_in_think"),
        (completion(IQA_THINK + " Roughly 61.3 overall."), "score_in_think"),
    ],
)
def test_rule_violations(text, code):
    assert code in codes(text)


def test_answer_equal_in_value_passes_and_numbers_far_from_the_score_are_allowed():
    assert codes(completion(IQA_THINK, "61.250")) == []
    assert codes(completion(IQA_THINK.replace("Mild", "Two small areas of mild"))) == []


def test_native_scale_score_in_think_is_caught():
    think = IQA_THINK + " A MOS near 3.45 fits."
    assert "score_in_think" in codes(completion(think), native=3.45)
    assert "score_in_think" not in codes(completion(think), native=None)


def test_aspects_touched_uses_word_starts():
    assert aspects_touched("A colourful, harmonious frame.") == (
        "visual_elements",
        "composition_structure",
        "overall_gestalt",
    )
    assert aspects_touched("unsharpened") == ()  # no hit inside a word


# ----------------------------------------------------------------------------- judge

IQA_VERDICT = {
    "decision": "keep",
    "overall_confidence": 80,
    "scores": {"visual_fidelity": 4, "technical_rigor": 3, "score_consistency": 4},
    "major_issues": [],
    "minor_notes": [],
}


def test_parse_verdict_reads_plain_fenced_and_embedded_json():
    plain = json.dumps(IQA_VERDICT)
    for text in (plain, f"```json\n{plain}\n```", f"Verdict follows.\n{plain}\nDone."):
        v = parse_verdict(text, "iqa")
        assert v.decision == "keep"
        assert v.scores == {
            "visual_fidelity": 4.0,
            "technical_rigor": 3.0,
            "score_consistency": 4.0,
        }
    v = parse_verdict("<think>hmm</think>" + plain.replace("4,", '"4",', 1), "iqa")
    assert v.scores["visual_fidelity"] == 4.0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I keep it.", "judge_unparseable"),
        ('{"decision": "keep", "scores": {', "judge_unparseable"),
        ("[1, 2]", "judge_unparseable"),
        (json.dumps({**IQA_VERDICT, "decision": "maybe"}), "judge_invalid"),
        (json.dumps({**IQA_VERDICT, "scores": {"visual_fidelity": 4}}), "judge_invalid"),
        (
            json.dumps({**IQA_VERDICT, "scores": {**IQA_VERDICT["scores"], "technical_rigor": 7}}),
            "judge_invalid",
        ),
    ],
)
def test_unusable_verdicts_raise_with_a_code(text, code):
    with pytest.raises(VerdictError) as e:
        parse_verdict(text, "iqa")
    assert e.value.code == code


def test_policy_defaults_follow_the_released_thresholds():
    policy = JudgePolicy()
    v = parse_verdict(json.dumps(IQA_VERDICT), "iqa")
    assert policy_violations(v, "iqa", policy) == []
    low = parse_verdict(
        json.dumps({**IQA_VERDICT, "scores": {**IQA_VERDICT["scores"], "visual_fidelity": 2}}),
        "iqa",
    )
    (why,) = policy_violations(low, "iqa", policy)
    assert why.code == "judge_score" and why.detail == "visual_fidelity = 2, must exceed 2"
    rej = parse_verdict(json.dumps({**IQA_VERDICT, "decision": "reject"}), "iqa")
    assert [w.code for w in policy_violations(rej, "iqa", policy)] == ["judge_decision"]
    assert policy_violations(rej, "iqa", JudgePolicy(require_keep=False)) == []


# ----------------------------------------------------------------------------- config


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_config_env_expansion_key_from_env_and_per_task_overrides(tmp_path):
    cfg = write(
        tmp_path / "c.yaml",
        """
teacher:
  base_url: ${TEACHER_URL:-http://127.0.0.1:8000/v1}
  model: ${TEACHER_MODEL}
  api_key_env: MY_KEY
  sampling: {temperature: 0.5}
  per_task:
    iaa: {vision: false, sampling: {max_tokens: 900}}
judge:
  base_url: https://api.example.com/v1/
  model: judge-model
  api_key: literal-key
rules: {iqa_words: [25, 45]}
judge_policy:
  must_exceed: {iqa: {visual_fidelity: 3}}
""",
    )
    c = load_config(cfg, env={"TEACHER_MODEL": "Qwen/Qwen3-VL-32B-Instruct", "MY_KEY": "sekrit"})
    iqa, iaa = c.teacher.endpoint("iqa"), c.teacher.endpoint("iaa")
    assert iqa.base_url == "http://127.0.0.1:8000/v1" and iqa.model == "Qwen/Qwen3-VL-32B-Instruct"
    assert iqa.api_key == "sekrit" and iqa.vision and not iaa.vision
    assert dict(iqa.sampling) == {"temperature": 0.5, "top_p": 0.8, "max_tokens": 256}
    assert dict(iaa.sampling) == {"temperature": 0.5, "top_p": 0.9, "max_tokens": 900}
    assert c.judge.endpoint("iqa").base_url == "https://api.example.com/v1"
    assert c.rules.iqa_words == (25, 45)
    assert dict(c.judge_policy.must_exceed["iqa"]) == {"visual_fidelity": 3.0}
    assert dict(c.judge_policy.must_exceed["iaa"]) == {
        "groundedness_no_fabrication": 2.0,
        "reasoning_cohesion": 2.0,
    }
    public = json.dumps(c.public_dict())
    assert "sekrit" not in public and "literal-key" not in public and "MY_KEY" in public


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("teacher: {base_url: http://x/v1, model: m, api_key_env: NOPE}", "NOPE is not set"),
        ("teacher: {base_url: http://x/v1, model: m, temprature: 1}", "unknown key(s) temprature"),
        ("teacher: {base_url: ftp://x, model: m}", "teacher.base_url"),
        ("teacher: {base_url: '${NOPE}', model: m}", "environment variable NOPE is not set"),
        ("rules: {iqa_words: [50, 30]}\nteacher: {base_url: http://x, model: m}", "below min"),
        (
            "judge: {base_url: http://x, model: m}\njudge_policy: {must_exceed: {iqa: {grounding: 2}}}",
            "judge_policy.must_exceed.iqa",
        ),
        ("rules: {}", "needs a 'teacher' or a 'judge'"),
        ("teacher: [1, 2", "not valid YAML"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, body, message):
    cfg = write(tmp_path / "bad.yaml", body)
    with pytest.raises(ValueError) as e:
        load_config(cfg, env={})
    assert str(cfg) in str(e.value) and message in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_example_configs_load(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.glob("rationales-*.yaml"))
    assert len(files) >= 2
    for f in files:
        c = load_config(f, env={"TATAR_API_KEY": "k", "TATAR_TEACHER_API_KEY": "k"})
        assert c.teacher is not None and c.judge is not None


# ----------------------------------------------------------------------------- records


def test_records_ids_targets_and_scales(tmp_path):
    rows = [
        {"task": "iqa", "image": "a.jpg", "gt_score": 3.45, "dataset": "KADID-10k"},
        {"task": "iaa", "image": "b.jpg", "gt_score": 2.3, "dataset": "artimuse", "id": "x7"},
        {"task": "IQA", "image": "/abs/c.jpg", "gt_score": 0.5, "scale": "0:1"},
        {"task": "iqa", "image": "d.jpg", "gt_score": 61.254, "dataset": "koniq"},
    ]
    f = write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    items = load_items(f, image_root=tmp_path / "imgs")
    assert [i.id for i in items] == ["iqa:a.jpg", "x7", "iqa:/abs/c.jpg", "iqa:d.jpg"]
    assert [i.target for i in items] == [61.25, 23.0, 50.0, 61.25]
    assert [i.native for i in items] == [3.45, 2.3, 0.5, None]
    assert items[0].image_path == tmp_path / "imgs" / "a.jpg"
    assert str(items[2].image_path) == "/abs/c.jpg"
    assert items[1].output(rationale="r") == {**rows[1], "rationale": "r"}
    assert items[0].output()["id"] == "iqa:a.jpg"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"task": "iqa", "image": "a.jpg", "gt_score": 6, "dataset": "kadid"}',
            "outside the declared scale 1-5",
        ),
        (
            '{"task": "iqa", "image": "a.jpg", "gt_score": 3, "dataset": "mystery"}',
            "no declared scale",
        ),
        ('{"task": "vqa", "image": "a.jpg", "gt_score": 3, "dataset": "kadid"}', "unknown task"),
        ('{"task": "iqa", "gt_score": 3, "dataset": "kadid"}', "missing 'image'"),
        ('{"task": "iqa", "image": "a.jpg", "gt_score": "3", "dataset": "kadid"}', "finite number"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, line, message):
    good = '{"task": "iqa", "image": "z.jpg", "gt_score": 3, "dataset": "kadid"}'
    f = write(tmp_path / "r.jsonl", good + "\n" + line + "\n")
    with pytest.raises(ValueError) as e:
        load_items(f)
    assert f"{f}:2:" in str(e.value) and message in str(e.value)


def test_duplicate_ids_are_refused(tmp_path):
    line = '{"task": "iqa", "image": "a.jpg", "gt_score": 3, "dataset": "kadid"}\n'
    f = write(tmp_path / "r.jsonl", line * 2)
    with pytest.raises(
        ValueError, match=r"r.jsonl:2: duplicate id 'iqa:a.jpg' \(first on line 1\)"
    ):
        load_items(f)


# ----------------------------------------------------------------------------- client


def test_retry_after_parsing():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    date = formatdate(1_000_030.0, usegmt=True)
    assert retry_after_seconds(date, now=1_000_000.0) == pytest.approx(30.0)


def test_backoff_is_exponential_capped_jittered_and_honours_retry_after():
    rng = random.Random(0)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (8, 10.0)]:
        for _ in range(50):
            d = backoff_delay(attempt, 1.0, 10.0, rng=rng)
            assert cap / 2 <= d <= cap
    assert backoff_delay(1, 1.0, 10.0, retry_after_s=7.0, rng=rng) == 7.0
    assert backoff_delay(1, 1.0, 10.0, retry_after_s=500.0, rng=rng) == 10.0


def _client(handler, waits, **kw):
    return ChatClient(
        "http://test/v1",
        api_key="k",
        max_retries=kw.pop("max_retries", 3),
        backoff_s=0.5,
        transport=httpx.MockTransport(handler),
        sleep=lambda s: _record(waits, s),
        **kw,
    )


async def _record(waits, s):
    waits.append(s)


def test_client_retries_429_with_retry_after_then_succeeds():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"})
        if len(calls) == 2:
            return httpx.Response(200, content=b"<html>proxy error</html>")
        return httpx.Response(
            200,
            json={
                "model": "m",
                "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1},
            },
        )

    waits: list[float] = []

    async def go():
        async with _client(handler, waits) as c:
            return await c.complete({"model": "m", "messages": []})

    reply = asyncio.run(go())
    assert reply.text == "hi" and reply.attempts == 3 and reply.usage["prompt_tokens"] == 5
    assert waits[0] == 7.0 and len(waits) == 2
    assert calls[0].headers["Authorization"] == "Bearer k"
    assert calls[0].url == "http://test/v1/chat/completions"


def test_client_gives_up_on_4xx_at_once_and_on_5xx_after_retries():
    def bad_request(request):
        return httpx.Response(400, json={"error": "context too long"})

    def down(request):
        return httpx.Response(503, text="overloaded")

    async def go(handler):
        async with _client(handler, [], max_retries=2) as c:
            await c.complete({"model": "m", "messages": []})

    with pytest.raises(ChatCallError) as e:
        asyncio.run(go(bad_request))
    assert (
        e.value.attempts == 1 and e.value.code == "http_400" and "context too long" in str(e.value)
    )
    with pytest.raises(ChatCallError) as e:
        asyncio.run(go(down))
    assert e.value.attempts == 3 and e.value.code == "http_503"


# ----------------------------------------------------------------------------- images, prompts


def test_image_data_url_passes_web_formats_and_reencodes_others(tmp_path):
    png = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(png)
    url = image_data_url(png)
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png.read_bytes()
    bmp = tmp_path / "b.bmp"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(bmp)
    url = image_data_url(bmp)
    assert url.startswith("data:image/png;base64,")
    small = image_data_url(png, max_pixels=300)
    with Image.open(io.BytesIO(base64.b64decode(small.split(",", 1)[1]))) as im:
        assert im.width * im.height <= 300 and abs(im.width / im.height - 4 / 3) < 0.15
    # A float TIFF reaches the teacher as the 8-bit picture the scored model sees.
    ramp = (np.arange(1200).reshape(30, 40) / 1199).astype(np.float32)
    Image.fromarray(ramp).save(tmp_path / "f.tif")
    url = image_data_url(tmp_path / "f.tif")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.mode == "RGB" and np.asarray(im)[29, 39, 0] == 255


def test_request_seed_is_stable_per_id():
    assert request_seed(0, "iqa:a.jpg") == request_seed(0, "iqa:a.jpg")
    assert request_seed(0, "iqa:a.jpg") != request_seed(0, "iqa:b.jpg")


def test_prompts_state_the_score_and_limits_and_are_catalogued():
    system, user = prompts.teacher_prompt("iqa", 61.25, words=(30, 50), min_aspects=5, vision=True)
    assert "61.25" in user and "30-50 words" in user and "<answer>61.25</answer>" in user
    assert "61.25" not in system
    notes = {"composition_structure": "Centred.", "visual_elements": "Warm tones."}
    _, user = prompts.teacher_prompt(
        "iaa", 23.0, words=(100, 150), min_aspects=5, vision=False, attributes=notes
    )
    assert user.index("1. Visual elements") < user.index("2. Composition") < user.index("23.00")
    assert "Follow the order of the expert notes" in user
    with pytest.raises(ValueError, match="needs the record's expert attribute notes"):
        prompts.teacher_prompt("iaa", 23.0, words=(100, 150), min_aspects=5, vision=False)
    cat = prompts.catalog()
    assert {"iqa_teacher_user", "iaa_judge_user", "iqa_judge_system"} <= set(cat)
    assert len(prompts.catalog_sha256()) == 64 and prompts.PROMPT_VERSION


# ----------------------------------------------------------------------------- cost


def test_smart_resize_matches_transformers():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as ref

    for h, w in [(768, 1024), (1024, 1024), (4000, 3000), (30, 60), (224, 224), (500, 2000)]:
        for factor in (28, 32):
            for max_px in (12_845_056, 1_572_864, 1_003_520):
                assert smart_resize(h, w, factor, 3136, max_px) == ref(h, w, factor, 3136, max_px)


def test_estimate_counts_calls_and_image_tokens():
    a = CostAssumptions()
    assert image_tokens((1024, 768), a) == 27 * 37 + 2
    assert image_tokens((1024, 768), CostAssumptions(patch=32)) == 24 * 32 + 2
    est = estimate(7058, 8998, a)
    by = {(r["stage"], r["task"]): r for r in est["rows"]}
    assert by["teacher", "iqa"]["calls"] == by["judge", "iqa"]["calls"] == 7058
    assert by["teacher", "iaa"]["calls"] == 8998
    assert est["totals"]["calls"] == 2 * (7058 + 8998)
    assert by["teacher", "iqa"]["prompt_tokens_per_call"] > 1001  # image plus text
    text_only = estimate(0, 8998, CostAssumptions(iaa_teacher_vision=False))
    assert (
        text_only["rows"][0]["prompt_tokens_per_call"]
        < by["teacher", "iaa"]["prompt_tokens_per_call"] - 1000
    )
    half = estimate(100, 0, CostAssumptions(rule_pass_rate=0.5))
    assert half["rows"][1]["calls"] == 50


@pytest.mark.shared_data
def test_estimate_from_the_artimuse_train_labels(shared_data):
    labels = json.loads((shared_data / "benchmarks" / "artimuse10k_train_labels.json").read_text())
    assert len(labels) == 8998
    est = estimate(0, len(labels))
    assert est["totals"]["calls"] == 2 * 8998


@pytest.mark.shared_data
def test_artimuse_train_labels_load_as_records(shared_data, tmp_path):
    labels = json.loads((shared_data / "benchmarks" / "artimuse10k_train_labels.json").read_text())
    f = tmp_path / "artimuse.jsonl"
    f.write_text(
        "".join(
            json.dumps(
                {
                    "task": "iaa",
                    "image": r["image"],
                    "gt_score": r["gt_score"],
                    "dataset": "artimuse",
                }
            )
            + "\n"
            for r in labels
        )
    )
    items = load_items(f)
    assert len(items) == 8998 and len({i.id for i in items}) == 8998
    assert items[0].id == "iaa:10_193.jpg" and items[0].target == 23.0
    assert min(i.target for i in items) == 0.0 and max(i.target for i in items) == 100.0


def test_journal_resumes_cuts_torn_lines_and_refuses_a_second_writer(tmp_path):
    from tatar.rationales.journal import Journal

    path = tmp_path / "j.jsonl"
    with Journal(path, stage="generate", fingerprint="f1") as j:
        assert j.open() == ({}, [])
        j.append({"id": "a", "ok": False})
        j.append({"id": "a", "ok": True})
        with pytest.raises(ValueError, match="another run is writing"):
            Journal(path, stage="generate", fingerprint="f1").open()
    with path.open("a") as f:
        f.write('{"id": "b", "o')
    with Journal(path, stage="generate", fingerprint="f1") as j:
        latest, entries = j.open()
        assert latest == {"a": {"id": "a", "ok": True}} and len(entries) == 2
        j.append({"id": "b", "ok": True})
    assert path.read_text().splitlines()[-1] == '{"id": "b", "ok": true}'
    with pytest.raises(ValueError, match="made with other settings"):
        Journal(path, stage="generate", fingerprint="f2").read()
