"""Point every Colab badge and install cell at another repository or branch (for forks and releases).

Usage: python scripts/set_repo_url.py https://github.com/ORG/REPO [BRANCH_OR_TAG]
The single source is cifar_helpers/lessons/course.py (REPO_URL, BRANCH); this rewrites it and every copy
that cannot import it (README, pyproject.toml, notebooks). tests/test_notebooks.py checks the result.
"""

import re
import sys
from pathlib import Path

from cifar_helpers.lessons.course import BRANCH, REPO_URL

ROOT = Path(__file__).resolve().parents[1]


def rewrite(text: str, new_url: str, new_branch: str) -> str:
    """Replace the old repository path and branch in links, install specs and constants."""
    old_path, new_path = (u.removeprefix("https://github.com/") for u in (REPO_URL, new_url))
    text = text.replace(f"/blob/{BRANCH}/notebooks/", f"/blob/{new_branch}/notebooks/")
    text = text.replace(f"{REPO_URL}@{BRANCH}", f"{new_url}@{new_branch}")
    text = text.replace(f"--branch {BRANCH} {REPO_URL}", f"--branch {new_branch} {new_url}")
    text = re.sub(rf'^BRANCH = "{re.escape(BRANCH)}"', f'BRANCH = "{new_branch}"', text, flags=re.M)
    return text.replace(old_path, new_path)


def main(new_url: str, new_branch: str = BRANCH) -> None:
    files = [ROOT / "cifar_helpers" / "lessons" / "course.py", ROOT / "README.md", ROOT / "pyproject.toml",
             *sorted((ROOT / "notebooks").glob("*.py")), *sorted((ROOT / "notebooks").glob("*.ipynb"))]
    for path in files:
        path.write_text(rewrite(path.read_text(), new_url.rstrip("/"), new_branch))
        print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
