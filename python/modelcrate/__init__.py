"""Modelcrate's Python side: fine-tune, export and write PyTorch golden outputs.

Each step is a module with its own CLI entry (`python -m modelcrate.<step> --spec F`),
run by `cargo xtask`. Steps read the resolved spec JSON that the xtask writes and
write only files under the model's artifact and golden folders; they know nothing
of Rust.
"""
