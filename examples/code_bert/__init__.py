"""The seed's demo: a tiny BERT pre-trained on the standard library's code, then fine-tuned to
tell which package a function comes from. Built from configs; nothing is downloaded.

    python -m examples.code_bert [--quick | --large] [--device cpu|cuda|auto]
"""

import os

# Everything is built locally; never let a library reach the Hugging Face Hub. Set before
# transformers (and huggingface_hub, which reads these at import) is first imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
