"""`workbench train-tokenizer`: train a byte-level BPE tokenizer on dataset specs and save it as a folder.

    workbench train-tokenizer --data builtin:kjv --data builtin:chat --vocab-size 8192 --out my-bpe
    workbench train --preset quick "models.student=builtin:smollm2-135m-instruct?fresh&layers=4&hidden=256&heads=4&tokenizer=my-bpe"
"""

from __future__ import annotations

import argparse
import shlex


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-tokenizer",
        help="Train a byte-level BPE tokenizer on dataset specs (a student may then use it: tokenizer=FOLDER).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", action="append", required=True,
                        help="Dataset spec (builtin:kjv, builtin:chat, a file or folder, a hub id); repeat for more.")
    parser.add_argument("--vocab-size", type=int, default=8192, help="Tokens in the vocabulary, special tokens included.")
    parser.add_argument("--min-frequency", type=int, default=2, help="Fewest occurrences for a merge to be learnt.")
    parser.add_argument("--text-column", default="text", help="Column holding the text in JSONL/CSV/parquet data.")
    parser.add_argument("--out", required=True, help="Folder to write the tokenizer to.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.data.splits import load_texts
    from workbench.models.bpe import train_bpe

    words = ["workbench", "train-tokenizer", *[f"--data={d}" for d in args.data], f"--vocab-size={args.vocab_size}",
             f"--min-frequency={args.min_frequency}", f"--out={args.out}"]
    texts = [text for dataset in args.data for text in load_texts(dataset, text_column=args.text_column)]
    meta = train_bpe(texts, args.vocab_size, args.out, datasets=args.data, min_frequency=args.min_frequency,
                     command=shlex.join(words))
    print(f"{args.out}: {meta['vocab_size']} tokens from {meta['documents']} documents ({meta['bytes']:,} bytes)")
    return 0
