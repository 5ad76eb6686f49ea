"""A WordPiece tokenizer and a tiny BERT, both built here from a config: nothing is downloaded.

The tokenizer is trained on the training split only. Code is pre-tokenized into identifier runs
(``_loop``, ``__init__``) and punctuation runs (``):``, ``==``) before WordPiece, so decoding
gives back the code's tokens; only whitespace (indentation, line breaks) is not kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class ModelSize:
    """The shape of the BERT encoder (BERT-base is 768 / 12 / 12 / 512)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 2
    max_length: int = 128  # tokens per function, [CLS] and [SEP] included


def pre_tokenizer() -> Any:
    """Identifier runs and punctuation runs (``\\w+|[^\\w\\s]+``), whitespace dropped."""
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Whitespace()


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, max_length: int) -> Any:
    """A WordPiece tokenizer trained on ``texts``, wrapped as a ``PreTrainedTokenizerFast``
    that adds ``[CLS] ... [SEP]`` and truncates to ``max_length``."""
    from tokenizers import Tokenizer, decoders, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    # Long identifiers are split into pieces, not mapped to [UNK] (the default gives up at 100).
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=1000))
    tokenizer.pre_tokenizer = pre_tokenizer()
    # cleanup=False: the default "cleanup" rewrites "do not" as "don't" and joins punctuation.
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                        min_frequency=2, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, model_max_length=max_length,
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", clean_up_tokenization_spaces=False)


def bert_config(tokenizer: Any, size: ModelSize, **extra: Any) -> Any:
    """A ``BertConfig`` of ``size`` for ``tokenizer``'s vocabulary."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
        num_attention_heads=size.heads, intermediate_size=4 * size.hidden,
        max_position_embeddings=size.max_length, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, **extra)


def masked_lm(tokenizer: Any, size: ModelSize) -> Any:
    """A freshly initialised ``BertForMaskedLM`` (weights from the global torch seed)."""
    from transformers import BertForMaskedLM

    return BertForMaskedLM(bert_config(tokenizer, size))


def classifier(pretrained: Any, labels: tuple[str, ...]) -> Any:
    """A ``BertForSequenceClassification`` whose encoder is ``pretrained``'s (a
    ``BertForMaskedLM``); the pooler and classification head start fresh."""
    from transformers import BertForSequenceClassification

    config = pretrained.config.to_dict()
    config.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                  label2id={label: i for i, label in enumerate(labels)})
    model = BertForSequenceClassification(type(pretrained.config).from_dict(config))
    # The masked-LM encoder has no pooler, so exactly the pooler's weights are left fresh.
    missing, unexpected = model.bert.load_state_dict(pretrained.bert.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise RuntimeError(f"encoder mismatch: missing {missing}, unexpected {unexpected}")
    return model
