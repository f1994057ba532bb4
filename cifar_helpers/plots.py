"""Figures of the study: training curves across both phases, confusion heatmap, image grids."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plot_history(history: dict, *, title: str = "Training across both phases") -> Figure:
    """Loss and accuracy per epoch for train and validation, phase boundaries as dashed lines."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-o"), ("val_", "--o")):
            if prefix + metric in history:
                ax.plot(history["epoch"], history[prefix + metric], style,
                        label=("validation " if prefix else "train ") + metric)
        for boundary in history.get("boundaries", []):
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        if ax.get_legend_handles_labels()[0]:  # nothing to label when no epoch was trained
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], *, normalize: bool = True
                   ) -> Figure:
    """Seaborn heatmap of the confusion matrix, rows normalised to recall by default."""
    values = confusion
    if normalize:
        values = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    sns.heatmap(values, annot=True, fmt=".2f" if normalize else "d", cmap="Blues",
                xticklabels=class_names, yticklabels=class_names, ax=ax, cbar=True)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""))
    fig.tight_layout()
    return fig


def plot_image_grid(images: np.ndarray, titles: Sequence[str], *, columns: int = 8,
                    size: float = 1.4) -> Figure:
    """Show uint8 images in a grid, one title per image."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.15),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(str(title), fontsize=8)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | Path) -> None:
    """Write a figure to `path` and release its memory."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
