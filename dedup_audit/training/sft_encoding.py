"""SFT encoding: turn a Sample into (input_ids, labels) exactly as the fine-tuning run did, so a
per-sample loss is computed over the same tokens the trainer trained on.

Kept apart from scoring because both the post-hoc scorer and the in-training recorder need it,
and because it is a self-contained copy of another project's rules:

- LLaMA-Factory templates are re-implemented here as slot lists (``TEMPLATES``: default, empty,
  alpaca, chatml, qwen, llama3), copied from llamafactory 0.9.5 ``data/template.py``, with its
  encoding rules: every slot string is tokenized on its own (``add_special_tokens=False``), eos/bos
  slots become the token id, the first turn gets prefix + system, prompt tokens are masked, all
  assistant turns are trained on, and ``cutoff_len`` truncation follows ``infer_seqlen``. The name
  comes from ``--template`` or the run's YAML (``template:`` in training_args.yaml or a ``*.yaml``
  in the run folder). Not reproduced: tool schemas (``tools`` is not rendered), function/observation
  roles, multimodal tokens, ``mask_history``, ``train_on_prompt``, packing.
- Other runs: ``tokenizer.apply_chat_template`` when the tokenizer has a chat template. The text
  is rendered turn by turn and split at each assistant turn, so prompt and response are tokenized
  separately (as TRL/LLaMA-Factory do); byte-level BPE can merge differently across that seam than
  a one-piece tokenization would, a difference of at most a token per seam.
- No template at all: the documented plain template, ``user text + "\\n"`` as prompt and
  ``assistant text + eos`` as response.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dedup_audit.errors import ConfigError
from dedup_audit.records import Sample

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
LLAMAFACTORY_DEFAULT_CUTOFF = 2048  # cutoff_len when a LLaMA-Factory YAML sets none
EOS = "\x00eos"  # slot markers: LLaMA-Factory's {"eos_token"} / {"bos_token"}
BOS = "\x00bos"


@dataclass(frozen=True)
class SlotTemplate:
    """A LLaMA-Factory chat template reduced to what SFT tokenization needs."""

    name: str
    user: tuple[str, ...] = ("{{content}}",)
    assistant: tuple[str, ...] = ("{{content}}", EOS)
    system: tuple[str, ...] = ("{{content}}",)  # LLaMA-Factory's default system formatter
    prefix: tuple[str, ...] = ()
    default_system: str = ""


TEMPLATES: dict[str, SlotTemplate] = {
    t.name: t
    for t in (
        SlotTemplate(
            "default",
            user=("Human: {{content}}", EOS, "\nAssistant:"),
            assistant=("{{content}}", EOS, "\n"),
            system=("System: {{content}}", EOS, "\n"),
        ),
        SlotTemplate("empty", assistant=("{{content}}",)),
        SlotTemplate(
            "alpaca",
            user=("### Instruction:\n{{content}}\n\n### Response:\n",),
            assistant=("{{content}}", EOS, "\n\n"),
            default_system=(
                "Below is an instruction that describes a task. "
                "Write a response that appropriately completes the request.\n\n"
            ),
        ),
        SlotTemplate(
            "chatml",
            user=("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n",),
            assistant=("{{content}}<|im_end|>\n",),
            system=("<|im_start|>system\n{{content}}<|im_end|>\n",),
        ),
        SlotTemplate(
            "qwen",
            user=("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n",),
            assistant=("{{content}}<|im_end|>\n",),
            system=("<|im_start|>system\n{{content}}<|im_end|>\n",),
            default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        ),
        SlotTemplate(
            "llama3",
            user=(
                "<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n",
            ),
            assistant=("{{content}}<|eot_id|>",),
            system=("<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>",),
            prefix=(BOS,),
        ),
    )
}
PLAIN = SlotTemplate("plain", user=("{{content}}\n",), assistant=("{{content}}", EOS))


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """LLaMA-Factory's truncation rule (data/processor/processor_utils.py), so scored tokens are
    the trained tokens even when cutoff_len cut a sample."""
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len


@dataclass(frozen=True)
class SftEncoder:
    """Turns a Sample into (input_ids, labels) the way the SFT trainer did.

    `template` is a SlotTemplate, or None to use the tokenizer's chat template."""

    tokenizer: PreTrainedTokenizerBase
    template: SlotTemplate | None
    max_length: int | None = None

    @property
    def description(self) -> str:
        if self.template is None:
            return "tokenizer.apply_chat_template"
        return f"llamafactory:{self.template.name}" if self.template is not PLAIN else "plain"

    def _slots_to_ids(self, slots: Sequence[str], content: str) -> list[int]:
        ids: list[int] = []
        tok = self.tokenizer
        for slot in slots:
            if slot == EOS:
                if tok.eos_token_id is not None:
                    ids.append(int(tok.eos_token_id))
            elif slot == BOS:
                if tok.bos_token_id is not None:
                    ids.append(int(tok.bos_token_id))
            else:
                text = slot.replace("{{content}}", content, 1)
                if text:
                    ids += tok.encode(text, add_special_tokens=False)
        return ids

    def pairs(self, sample: Sample) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, response ids) per assistant turn, before truncation."""
        turns = list(sample.turns)
        if self.template is None:
            return self._chat_template_pairs(sample)
        t = self.template
        out: list[tuple[list[int], list[int]]] = []
        pending: list[int] = []
        first = True
        for turn in turns:
            if turn.role == "assistant":
                if first:  # no user turn before: prefix/system still lead
                    pending = self._first_elements(sample) + pending
                    first = False
                out.append((pending, self._slots_to_ids(t.assistant, turn.text)))
                pending = []
                continue
            ids: list[int] = []
            if first:
                ids += self._first_elements(sample)
                first = False
            ids += self._slots_to_ids(t.user, turn.text)
            pending += ids
        return out

    def _first_elements(self, sample: Sample) -> list[int]:
        t = self.template
        assert t is not None
        ids = self._slots_to_ids(t.prefix, "")
        system = sample.system or t.default_system
        if system:
            ids += self._slots_to_ids(t.system, system)
        return ids

    def _chat_template_pairs(self, sample: Sample) -> list[tuple[list[int], list[int]]]:
        tok = self.tokenizer
        messages: list[dict[str, str]] = []
        if sample.system:
            messages.append({"role": "system", "content": sample.system})
        out: list[tuple[list[int], list[int]]] = []
        done = ""
        for turn in sample.turns:
            if turn.role != "assistant":
                messages.append({"role": turn.role, "content": turn.text})
                continue
            prompt = str(
                tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
            messages.append({"role": "assistant", "content": turn.text})
            full = str(tok.apply_chat_template(messages, tokenize=False))
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise ConfigError(
                    "the tokenizer's chat template does not render conversations as prefixes of "
                    "each other; pass --template with a LLaMA-Factory template name"
                )
            source, target = prompt[len(done) :], full[len(prompt) :]
            out.append(
                (
                    tok.encode(source, add_special_tokens=False),
                    tok.encode(target, add_special_tokens=False),
                )
            )
            done = full
        return out

    def encode(self, sample: Sample) -> tuple[list[int], list[int]]:
        """input_ids and labels (IGNORE_INDEX on prompt tokens), truncated like LLaMA-Factory."""
        input_ids: list[int] = []
        labels: list[int] = []
        cutoff = self.max_length
        total = 0
        for source, target in self.pairs(sample):
            if cutoff is not None:
                if total >= cutoff:
                    break
                s_len, t_len = infer_seqlen(len(source), len(target), cutoff - total)
                source, target = source[:s_len], target[:t_len]
            total += len(source) + len(target)
            input_ids += source + target
            labels += [IGNORE_INDEX] * len(source) + target
        return input_ids, labels

    def response_ids(self, sample: Sample) -> list[int]:
        """The trained-on token ids of a sample (its labels without the masked prompt)."""
        return [x for x in self.encode(sample)[1] if x != IGNORE_INDEX]


def read_run_template(run_dir: Path) -> tuple[str | None, int | None]:
    """`template` and `cutoff_len` from the run's YAML, if any YAML in the run folder has them."""
    candidates = [run_dir / "training_args.yaml", run_dir / "llamaboard_config.yaml"]
    candidates += sorted(p for p in run_dir.glob("*.y*ml") if p not in candidates)
    for path in candidates:
        if not path.is_file():
            continue
        template = cutoff = None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"^\s*(?:top\.)?(template|cutoff_len|train\.cutoff_len)\s*:\s*(\S+)", line)
            if not m:
                continue
            value = m.group(2).strip("\"'")
            if m.group(1) == "template":
                template = value
            elif value.isdigit():
                cutoff = int(value)
        if template is not None or cutoff is not None:
            return template, cutoff
    return None, None


def make_encoder(
    tokenizer: PreTrainedTokenizerBase,
    template: str | None = None,
    max_length: int | None = None,
) -> SftEncoder:
    """Pick the encoding: a named LLaMA-Factory template, else the tokenizer's chat template,
    else the plain template. An unknown name is an error rather than a silent approximation."""
    if template:
        if template in TEMPLATES:
            return SftEncoder(tokenizer, TEMPLATES[template], max_length)
        if template == "plain":
            return SftEncoder(tokenizer, PLAIN, max_length)
        if template not in ("chat_template", "auto") and not getattr(
            tokenizer, "chat_template", None
        ):
            raise ConfigError(
                f"template {template!r} is not one dedup-audit reproduces "
                f"({', '.join(sorted(TEMPLATES))}, plain) and the tokenizer has no chat template; "
                "pass --template with one of those"
            )
        if template not in ("chat_template", "auto"):
            # LLaMA-Factory writes its template into the saved tokenizer: that is the best copy.
            return SftEncoder(tokenizer, None, max_length)
    if getattr(tokenizer, "chat_template", None):
        return SftEncoder(tokenizer, None, max_length)
    return SftEncoder(tokenizer, PLAIN, max_length)
