"""`export --push-to-hub REPO`: upload the finished folder with huggingface_hub, never by default.

The token is checked before any work; a failed upload leaves the verified folder in place
and says how to upload it later.
"""

from __future__ import annotations

from pathlib import Path

from gcm_edit.errors import GcmEditError


def _later(repo: str, folder: Path) -> str:
    return f"upload it later with: hf upload {repo} {folder} --repo-type model"


def check_token(repo: str) -> str:
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise GcmEditError(
            f"--push-to-hub needs a Hugging Face token (`hf auth login` or $HF_TOKEN); nothing "
            f"was done: log in, or export without it and {_later(repo, Path('FOLDER'))}"
        )
    return token


def push(repo: str, folder: Path, token: str) -> str:
    """Create the repo if needed and upload `folder`; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        url = api.create_repo(repo, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=repo, folder_path=str(folder), repo_type="model")
    except Exception as exc:  # network, auth and hub errors all end the same way for a user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GcmEditError(f"upload to {repo} failed ({reason}); {_later(repo, folder)}") from exc
    return str(url)
