"""Point every Colab badge and install cell at another repository or branch (for forks and releases).

Usage: python scripts/set_repo_url.py https://github.com/ORG/REPO [BRANCH_OR_TAG]
The single source is cifar_helpers/lessons/course.py (REPO_URL, BRANCH); this rewrites it and every copy
that cannot import it (README, pyproject.toml, notebooks, benchmarks/gpu_check.py).
tests/test_notebooks.py checks the result.
"""

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "cifar_helpers" / "lessons" / "course.py"


def constant(name: str) -> str:
    """A string constant of this checkout's course.py (not of whichever copy is installed)."""
    return re.search(rf'^{name} = "([^"]+)"', COURSE.read_text(), flags=re.M).group(1)


REPO_URL, BRANCH = constant("REPO_URL"), constant("BRANCH")


def rewrite(text: str, new_url: str, new_branch: str) -> str:
    """Replace the old repository path and branch in links, install specs and constants."""
    old_path, new_path = (u.removeprefix("https://github.com/") for u in (REPO_URL, new_url))
    text = text.replace(f"/blob/{BRANCH}/notebooks/", f"/blob/{new_branch}/notebooks/")
    text = text.replace(f"{REPO_URL}@{BRANCH}", f"{new_url}@{new_branch}")
    text = text.replace(f"--branch {BRANCH} {REPO_URL}", f"--branch {new_branch} {new_url}")
    text = re.sub(rf'^BRANCH = "{re.escape(BRANCH)}"', f'BRANCH = "{new_branch}"', text, flags=re.M)
    return text.replace(old_path, new_path)


def repository_url(text: str) -> str:
    """https://github.com/OWNER/REPO, as given or as `git clone` takes it (trailing / or .git)."""
    url = text.rstrip("/").removesuffix(".git")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise argparse.ArgumentTypeError(f"expected https://github.com/OWNER/REPO, got {text!r}")
    return url


def branch_name(text: str) -> str:
    """A branch or tag name that can sit in a URL and a pip spec."""
    if not re.fullmatch(r"[\w./-]+", text) or text.startswith("-"):
        raise argparse.ArgumentTypeError(f"not a branch or tag name: {text!r}")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", type=repository_url, help="https://github.com/OWNER/REPO")
    parser.add_argument("branch", nargs="?", default=BRANCH, type=branch_name,
                        help=f"branch or tag the links point at (now: {BRANCH})")
    args = parser.parse_args(argv)
    files = [COURSE, ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "benchmarks" / "gpu_check.py",
             *sorted((ROOT / "notebooks").glob("*.py")), *sorted((ROOT / "notebooks").glob("*.ipynb"))]
    for path in files:
        path.write_text(rewrite(path.read_text(), args.url, args.branch))
        print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
