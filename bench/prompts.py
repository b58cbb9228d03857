"""The built-in prompts: short Japanese requests, the seed benchmark's main use."""

from __future__ import annotations

from pathlib import Path

JAPANESE_PROMPTS: tuple[str, ...] = (
    "日本の四季について、それぞれの季節の特徴を詳しく説明してください。",
    "東京から京都まで旅行する計画を立ててください。おすすめの観光地も教えてください。",
    "人工知能の歴史を簡単にまとめて、これからの課題について述べてください。",
    "おいしいカレーライスの作り方を、材料から順番に説明してください。",
    "富士山に登るときに気をつけることを五つ挙げて、理由も書いてください。",
    "日本語を勉強している人に、敬語の使い方をわかりやすく教えてください。",
    "朝ごはんを食べることの大切さについて、短い作文を書いてください。",
    "猫と犬を飼うときの違いについて、飼い主の立場から比べてください。",
)


def load_prompts(path: Path | None) -> tuple[str, ...]:
    """The prompts of a UTF-8 file (one per non-blank line), or the built-in ones."""
    if path is None:
        return JAPANESE_PROMPTS
    prompts = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not prompts:
        raise ValueError(f"{path} holds no prompt")
    return prompts
